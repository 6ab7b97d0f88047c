from django.apps import AppConfig


class EvalhubConfig(AppConfig):
    name = "evalhub"
    verbose_name = "EvalHub"

    def ready(self) -> None:
        import evalhub.core.converters  # noqa: F401  (the <name:…> path converter)
        from evalhub import checks  # noqa: F401 - registers the system checks
        from evalhub.tasks.filter_fields import filter_fields_register

        filter_fields_register()
