from django.apps import AppConfig


class ProvidersConfig(AppConfig):
    name = "evalhub.providers"
    label = "providers"
    verbose_name = "LLM providers"
