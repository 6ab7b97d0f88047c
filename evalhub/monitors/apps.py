from django.apps import AppConfig


class MonitorsConfig(AppConfig):
    name = "evalhub.monitors"
    label = "monitors"
    verbose_name = "Monitors, alerts and automations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from evalhub.budgets.notify import sender_register
        from evalhub.monitors import (
            jobs,  # noqa: F401 - registers the Celery tasks (sent by name)
            receivers,  # noqa: F401  (connects the automation hook)
        )
        from evalhub.monitors.channels import notification_send

        sender_register(notification_send)  # budget warnings go through the channels
