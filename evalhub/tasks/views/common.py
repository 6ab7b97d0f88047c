"""What the tasks pages share: their templates, page sizes and lookups."""

from __future__ import annotations

from typing import Final

from django.http import Http404

from evalhub.tasks.models import Granularity, Task, TaskRun
from evalhub.tasks.selectors import (
    run_get,
    task_get,
)

LIST_TEMPLATE: Final = "evalhub/tasks/task_list.html"
RUNS_TEMPLATE: Final = "evalhub/tasks/run_list.html"
FORM_TEMPLATE: Final = "evalhub/tasks/task_form.html"
DETAIL_TEMPLATE: Final = "evalhub/tasks/task_detail.html"
RUN_TEMPLATE: Final = "evalhub/tasks/run_detail.html"
BULK_TEMPLATE: Final = "evalhub/_bulk_evaluate.html"
TASKS_PER_PAGE: Final = 50
RUNS_PER_PAGE: Final = 25
LOGS_PER_PAGE: Final = 50
# The class of a "run … is queued" message: the run page removes it once the run has started.
RUN_QUEUED_TAG: Final = "run-queued"
# The trace browser's tabs and the granularity of their rows.
TAB_GRANULARITY: Final = {
    "spans": Granularity.SPAN,
    "traces": Granularity.TRACE,
    "sessions": Granularity.SESSION,
}
GRANULARITY_TAB: Final = {granularity: tab for tab, granularity in TAB_GRANULARITY.items()}


def _task_or_404(task_id: int) -> Task:
    task = task_get(task_id)
    if task is None:
        raise Http404("no such task")
    return task


def _run_or_404(run_id: int) -> TaskRun:
    run = run_get(run_id)
    if run is None:
        raise Http404("no such run")
    return run
