from django.apps import AppConfig


class EvaluatorsConfig(AppConfig):
    name = "evalhub.evaluators"
    label = "evaluators"
    verbose_name = "Evaluators"
