"""Alignment workspace pages (namespace ``alignment``)."""

from django.urls import path

import evalhub.core.converters  # noqa: F401  (registers the <name:…> path converter)
from evalhub.alignment import views

app_name = "alignment"
urlpatterns = [
    path("evaluators/<name:ident>/align/", views.alignment_workspace, name="workspace"),
    path(
        "evaluators/<name:ident>/align/estimate/",
        views.alignment_estimate_view,
        name="estimate",
    ),
    path("evaluators/<name:ident>/align/<int:alignment_id>/", views.alignment_run, name="run"),
    path(
        "evaluators/<name:ident>/align/<int:alignment_id>/save/",
        views.alignment_run_save,
        name="save",
    ),
    path(
        "evaluators/<name:ident>/align/<int:alignment_id>/golden/",
        views.alignment_run_golden,
        name="golden",
    ),
    path(
        "evaluators/<name:ident>/align/<int:alignment_id>/resume/",
        views.alignment_run_resume_view,
        name="resume",
    ),
]
