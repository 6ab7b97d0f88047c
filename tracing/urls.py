"""Trace browser pages: projects and the project's traces / spans / sessions lists."""

from django.urls import path  # noqa: F401  (patterns are added with the pages)

app_name = "tracing"
urlpatterns: list = []
