""" "Evaluate with…" in the trace browser: a task or an evaluator run on the selected rows."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from evalhub.core.web import next_or
from evalhub.evaluators.models import Evaluator
from evalhub.evaluators.selectors import evaluator_list
from evalhub.identity.auth import request_user
from evalhub.tasks.models import Task
from evalhub.tasks.runs import RunRejected, run_manual_create
from evalhub.tasks.selectors import (
    task_get,
    task_list,
)
from evalhub.tasks.views.common import (
    BULK_TEMPLATE,
    RUN_QUEUED_TAG,
    TAB_GRANULARITY,
)
from tracing.models import Project


def _project_or_404(name: str, tab: str) -> Project:
    if tab not in TAB_GRANULARITY:
        raise Http404("no such tab")
    return get_object_or_404(Project, name=name)


@login_required
@require_GET
def evaluate_options(request: HttpRequest, project: str, tab: str) -> HttpResponse:
    """The bulk bar's "Evaluate with" choices: the evaluators and the project's tasks."""
    project_row = _project_or_404(project, tab)
    ctx = {
        "project": project_row,
        "tab": tab,
        "evaluators": evaluator_list(),
        "project_tasks": task_list(project=project_row),
    }
    return render(request, f"{BULK_TEMPLATE}#options", ctx)


def _evaluate_with(choice: str, project: Project) -> tuple[Task | None, Evaluator | None]:
    """``task:<id>`` (a task of ``project``) or ``evaluator:<id>``; (None, None) if neither."""
    kind, _, ident = choice.partition(":")
    if not ident.isdigit():
        return None, None
    if kind == "task":
        task = task_get(int(ident))
        return (task, None) if task is not None and task.project_id == project.pk else (None, None)
    if kind == "evaluator":
        return None, evaluator_list().filter(pk=int(ident)).first()
    return None, None


@login_required
@require_POST
def evaluate_selected(request: HttpRequest, project: str, tab: str) -> HttpResponse:
    """A manual run over the rows selected in the trace browser, then its log page."""
    project_row = _project_or_404(project, tab)
    back = next_or(request, reverse(f"tracing:{tab}", kwargs={"project": project_row.name}))
    task, evaluator = _evaluate_with(request.POST.get("evaluate_with", ""), project_row)
    if task is None and evaluator is None:
        messages.error(request, "Choose an evaluator or a task to evaluate with.")
        return redirect(back)
    try:
        run = run_manual_create(
            project=project_row,
            granularity=TAB_GRANULARITY[tab],
            keys=request.POST.getlist("selected"),
            task=task,
            evaluator=evaluator,
            user=request_user(request),
        )
    except RunRejected as exc:
        messages.error(request, f"Could not evaluate: {exc.message}")
        return redirect(back)
    messages.success(
        request,
        f"Run #{run.pk} is queued: {run.sampled} {tab} to evaluate.",
        extra_tags=RUN_QUEUED_TAG,
    )
    return redirect("tasks:run", run_id=run.pk)
