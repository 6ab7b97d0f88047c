from django.apps import AppConfig


class CalibrationConfig(AppConfig):
    """No models: the templates' tags and the package's modules."""

    name = "evalhub.calibration"
    label = "calibration"
    verbose_name = "Judge calibration"
