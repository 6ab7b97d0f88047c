from django.apps import AppConfig


class AlignmentConfig(AppConfig):
    name = "evalhub.alignment"
    label = "alignment"
    verbose_name = "Evaluator alignment"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from evalhub.alignment import jobs  # noqa: F401 - registers the Celery tasks (sent by name)
