from django.apps import AppConfig


class RetentionConfig(AppConfig):
    name = "evalhub.retention"
    label = "retention"
    verbose_name = "Retention"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from evalhub.retention import jobs  # noqa: F401 - registers the Celery tasks (sent by name)
