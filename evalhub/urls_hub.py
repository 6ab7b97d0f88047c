"""Evaluator hub pages: evaluators, the playground, and Settings → AI providers."""

from django.urls import path  # noqa: F401  (patterns are added with the pages)

app_name = "evaluators"
urlpatterns: list = []
