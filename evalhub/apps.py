from django.apps import AppConfig


class EvalhubConfig(AppConfig):
    """The project: settings, root URLs, the API root, the Celery app and the system checks.
    Its label keeps the migrations that created the tables now owned by the product apps."""

    name = "evalhub"
    verbose_name = "EvalHub"

    def ready(self) -> None:
        import evalhub.core.converters  # noqa: F401  (the <name:…> path converter)
        from evalhub import checks  # noqa: F401 - registers the system checks
