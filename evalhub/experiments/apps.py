from django.apps import AppConfig


class ExperimentsConfig(AppConfig):
    name = "evalhub.experiments"
    label = "experiments"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from evalhub.experiments import jobs  # noqa: F401 - registers the Celery tasks (sent by name)
        from evalhub.experiments.task_target import register

        register()  # dataset tasks: the task engine's target for experiment runs
