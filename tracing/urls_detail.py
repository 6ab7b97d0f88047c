"""Trace browser detail pages: a trace (span tree, waterfall, span pane) and a session."""

from django.urls import path  # noqa: F401  (patterns are added with the pages)

app_name = "detail"
urlpatterns: list = []
