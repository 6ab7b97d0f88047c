from django.apps import AppConfig


class TrendsConfig(AppConfig):
    name = "evalhub.trends"
    label = "trends"
    verbose_name = "Score trends"
