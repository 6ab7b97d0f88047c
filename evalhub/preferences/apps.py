from django.apps import AppConfig


class PreferencesConfig(AppConfig):
    name = "evalhub.preferences"
    label = "preferences"
    default_auto_field = "django.db.models.BigAutoField"
    verbose_name = "Preferences"
