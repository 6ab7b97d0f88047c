"""Trace browser pages: projects and the project's traces / spans / sessions lists."""

from django.urls import path

from tracing import views

app_name = "tracing"
urlpatterns = [
    path("projects/", views.projects, name="projects"),
    path("projects/<str:project>/", views.project_home, name="project"),
    path(
        "projects/<str:project>/traces/",
        views.project_browse,
        {"tab": "traces"},
        name="traces",
    ),
    path("projects/<str:project>/spans/", views.project_browse, {"tab": "spans"}, name="spans"),
    path(
        "projects/<str:project>/sessions/",
        views.project_browse,
        {"tab": "sessions"},
        name="sessions",
    ),
    path(
        "projects/<str:project>/<str:tab>/export/",
        views.project_export,
        name="export",
    ),
    path(
        "projects/<str:project>/<str:tab>/delete/",
        views.project_delete,
        name="delete",
    ),
]
