from django.apps import AppConfig


class CalibrationConfig(AppConfig):
    """Judge-human agreement over time, corrected rates, calibration sampling of task runs."""

    name = "evalhub.calibration"
    label = "calibration"
    verbose_name = "Judge calibration"

    def ready(self) -> None:
        from evalhub.calibration.sampling import calibration_sample
        from evalhub.tasks.hooks import items_written_register

        items_written_register(calibration_sample)  # a task's share of judged items to a queue
        from evalhub.calibration import (
            jobs,  # noqa: F401 - registers the Celery task (sent by name)
            receivers,  # noqa: F401 - routes disagreements as labels arrive
        )
