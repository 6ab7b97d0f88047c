"""Online-task pages: trends (included in the ``tasks`` namespace by evalhub/tasks/urls.py)."""

from django.urls import URLPattern, path

import evalhub.core.converters  # noqa: F401  (registers the <name:…> path converter)
from evalhub.trends import views

urlpatterns: list[URLPattern] = [
    path("projects/<name:project>/trends/", views.project_trends, name="trends"),
]
