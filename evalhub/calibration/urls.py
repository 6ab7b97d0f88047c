"""Calibration pages (namespace ``calibration``)."""

from django.urls import path

import evalhub.core.converters  # noqa: F401  (registers the <name:…> path converter)
from evalhub.calibration import views

app_name = "calibration"
urlpatterns = [
    path("tasks/form/estimate/", views.task_form_estimate, name="task-estimate"),
    path("tasks/<int:task_id>/calibration/", views.task_calibration_page, name="task"),
    path(
        "evaluators/<name:ident>/calibration/",
        views.evaluator_calibration_page,
        name="evaluator",
    ),
]
