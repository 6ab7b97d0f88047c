from django.apps import AppConfig


class IdentityConfig(AppConfig):
    name = "evalhub.identity"
    label = "identity"
    verbose_name = "Identity"
