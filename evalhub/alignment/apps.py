from django.apps import AppConfig


class AlignmentConfig(AppConfig):
    name = "evalhub.alignment"
    label = "alignment"
    verbose_name = "Evaluator alignment"
    default_auto_field = "django.db.models.BigAutoField"
