"""The Tasks page and the Runs tab."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from evalhub.core.web import htmx_partial
from evalhub.tasks.forms import RunFilterForm, TaskFilterForm
from evalhub.tasks.selectors import (
    run_list,
    runs_recent,
    task_list,
)
from evalhub.tasks.views.common import (
    LIST_TEMPLATE,
    RUNS_PER_PAGE,
    RUNS_TEMPLATE,
    TASKS_PER_PAGE,
)


@login_required
@require_GET
def tasks_page(request: HttpRequest) -> HttpResponse:
    """Every task with its settings, status (and why it is paused) and its last runs."""
    form = TaskFilterForm(request.GET or None)
    project = form.cleaned_data.get("project") if form.is_valid() else None
    page = Paginator(task_list(project=project), TASKS_PER_PAGE).get_page(request.GET.get("page"))
    tasks = list(page.object_list)
    recent = runs_recent(tasks=tasks)
    for task in tasks:
        task.recent_runs = recent.get(task.pk, [])  # type: ignore[attr-defined]  # read by the template only
    ctx = {"form": form, "project": project, "page": page, "tasks": tasks, "tab": "tasks"}
    if htmx_partial(request):
        return render(request, f"{LIST_TEMPLATE}#results", ctx)
    return render(request, LIST_TEMPLATE, ctx)


@login_required
@require_GET
def runs_page(request: HttpRequest) -> HttpResponse:
    """Every run, newest first: continuous, backfill and manual (also those of no task)."""
    form = RunFilterForm(request.GET or None)
    cleaned = form.cleaned_data if form.is_valid() else {}
    runs = run_list(project=cleaned.get("project"), status=cleaned.get("status") or "")
    page = Paginator(runs, RUNS_PER_PAGE).get_page(request.GET.get("page"))
    ctx = {"form": form, "project": cleaned.get("project"), "page": page, "tab": "runs"}
    if htmx_partial(request):
        return render(request, f"{RUNS_TEMPLATE}#results", ctx)
    return render(request, RUNS_TEMPLATE, ctx)
