"""Online-task pages: the Tasks pages and run logs (in the ``tasks`` namespace with the score
trends, put together by ``evalhub.urls``)."""

from django.urls import URLPattern, path

import evalhub.core.converters  # noqa: F401  (registers the <name:…> path converter)
from evalhub.tasks.views import evaluate, form, lists, run, task

urlpatterns: list[URLPattern] = [
    path("tasks/", lists.tasks_page, name="list"),
    path("tasks/runs/", lists.runs_page, name="runs"),
    path("tasks/new/", form.task_new, name="new"),
    path("tasks/form/count/", form.task_form_count, name="form-count"),
    path("tasks/form/variables/", form.task_form_variables, name="form-variables"),
    path("tasks/form/test/", form.task_form_test, name="form-test"),
    path("tasks/<int:task_id>/", task.task_detail, name="detail"),
    path("tasks/<int:task_id>/edit/", form.task_edit, name="edit"),
    path("tasks/<int:task_id>/pause/", task.task_pause_view, name="pause"),
    path("tasks/<int:task_id>/resume/", task.task_resume_view, name="resume"),
    path("tasks/<int:task_id>/duplicate/", task.task_duplicate_view, name="duplicate"),
    path("tasks/<int:task_id>/delete/", task.task_delete_view, name="delete"),
    path("tasks/<int:task_id>/backfill/", task.task_backfill, name="backfill"),
    path("runs/<int:run_id>/", run.run_detail, name="run"),
    path("runs/<int:run_id>/cancel/", run.run_cancel_view, name="run-cancel"),
    path(
        "tasks/evaluate/<name:project>/<name:tab>/",
        evaluate.evaluate_selected,
        name="evaluate",
    ),
    path(
        "tasks/evaluate/<name:project>/<name:tab>/options/",
        evaluate.evaluate_options,
        name="evaluate-options",
    ),
]
