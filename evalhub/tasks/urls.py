"""Online-task pages: the Tasks pages and run logs (in the ``tasks`` namespace with the score
trends, put together by ``evalhub.urls``)."""

from django.urls import URLPattern, path

import evalhub.core.converters  # noqa: F401  (registers the <name:…> path converter)
from evalhub.tasks import views

urlpatterns: list[URLPattern] = [
    path("tasks/", views.tasks_page, name="list"),
    path("tasks/runs/", views.runs_page, name="runs"),
    path("tasks/new/", views.task_new, name="new"),
    path("tasks/form/count/", views.task_form_count, name="form-count"),
    path("tasks/form/variables/", views.task_form_variables, name="form-variables"),
    path("tasks/form/test/", views.task_form_test, name="form-test"),
    path("tasks/<int:task_id>/", views.task_detail, name="detail"),
    path("tasks/<int:task_id>/edit/", views.task_edit, name="edit"),
    path("tasks/<int:task_id>/pause/", views.task_pause_view, name="pause"),
    path("tasks/<int:task_id>/resume/", views.task_resume_view, name="resume"),
    path("tasks/<int:task_id>/duplicate/", views.task_duplicate_view, name="duplicate"),
    path("tasks/<int:task_id>/delete/", views.task_delete_view, name="delete"),
    path("tasks/<int:task_id>/backfill/", views.task_backfill, name="backfill"),
    path("runs/<int:run_id>/", views.run_detail, name="run"),
    path("runs/<int:run_id>/cancel/", views.run_cancel_view, name="run-cancel"),
    path(
        "tasks/evaluate/<name:project>/<name:tab>/",
        views.evaluate_selected,
        name="evaluate",
    ),
    path(
        "tasks/evaluate/<name:project>/<name:tab>/options/",
        views.evaluate_options,
        name="evaluate-options",
    ),
]
