from django.apps import AppConfig


class ShadowConfig(AppConfig):
    """Shadow versions of a task's evaluators (results apart from the annotations)."""

    name = "evalhub.shadow"
    label = "shadow"
    verbose_name = "Shadow versions"

    def ready(self) -> None:
        from evalhub.shadow.services import shadow_results_write, shadows_run_config
        from evalhub.tasks.hooks import run_config_register, shadow_written_register

        run_config_register(shadows_run_config)  # a run evaluates the task's running shadows
        shadow_written_register(shadow_results_write)  # their results: to ShadowResult only
