"""Trace browser pages: projects and the project's traces / spans / sessions lists."""

from django.urls import path

import evalhub.core.converters  # noqa: F401  (registers the <name:…> path converter)
from tracing.browser import views

app_name = "tracing"
urlpatterns = [
    path("projects/", views.projects, name="projects"),
    path("projects/<name:project>/", views.project_home, name="project"),
    path(
        "projects/<name:project>/traces/",
        views.project_browse,
        {"tab": "traces"},
        name="traces",
    ),
    path("projects/<name:project>/spans/", views.project_browse, {"tab": "spans"}, name="spans"),
    path(
        "projects/<name:project>/sessions/",
        views.project_browse,
        {"tab": "sessions"},
        name="sessions",
    ),
    path(
        "projects/<name:project>/<name:tab>/export/",
        views.project_export,
        name="export",
    ),
    path(
        "projects/<name:project>/<name:tab>/delete/",
        views.project_delete,
        name="delete",
    ),
]
