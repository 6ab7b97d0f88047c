"""Online-task pages: trends (included in the ``tasks`` namespace by evalhub/tasks/urls.py)."""

from django.urls import URLPattern, path

import evalhub.core.converters  # noqa: F401  (registers the <name:…> path converter)
from evalhub.trends import views as views_trends

urlpatterns: list[URLPattern] = [
    path("projects/<name:project>/trends/", views_trends.project_trends, name="trends"),
]
