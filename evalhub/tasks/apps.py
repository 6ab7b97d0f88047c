from django.apps import AppConfig


class TasksConfig(AppConfig):
    name = "evalhub.tasks"
    label = "tasks"
    verbose_name = "Online tasks"

    def ready(self) -> None:
        from evalhub.tasks import jobs  # noqa: F401 - registers the Celery tasks (found by name)
        from evalhub.tasks.filter_fields import filter_fields_register

        filter_fields_register()
