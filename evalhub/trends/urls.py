"""Online-task pages: trends (included in the ``tasks`` namespace by evalhub/urls_tasks.py)."""

from django.urls import URLPattern, path

import evalhub.converters  # noqa: F401  (registers the <name:…> path converter)
from evalhub import views_trends

urlpatterns: list[URLPattern] = [
    path("projects/<name:project>/trends/", views_trends.project_trends, name="trends"),
]
