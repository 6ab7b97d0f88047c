"""A task: its runs and the actions on it (pause, resume, duplicate, delete, backfill)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from evalhub.core.web import next_or
from evalhub.identity.auth import request_user
from evalhub.tasks.backfill import run_backfill_create
from evalhub.tasks.forms import BackfillForm
from evalhub.tasks.judge_tracing import judge_project_name
from evalhub.tasks.runs import RunRejected
from evalhub.tasks.selectors import (
    run_list,
)
from evalhub.tasks.services import task_delete, task_duplicate, task_pause, task_resume
from evalhub.tasks.views.common import (
    DETAIL_TEMPLATE,
    RUN_QUEUED_TAG,
    RUNS_PER_PAGE,
    _task_or_404,
)
from tracing.models import Project


@login_required
@require_GET
def task_detail(request: HttpRequest, task_id: int) -> HttpResponse:
    task = _task_or_404(task_id)
    page = Paginator(run_list(task=task), RUNS_PER_PAGE).get_page(request.GET.get("page"))
    judge_project = judge_project_name(task.project.name) if task.project else ""
    return render(
        request,
        DETAIL_TEMPLATE,
        {
            "task": task,
            "page": page,
            "judge_project": judge_project,
            "judge_project_exists": Project.objects.filter(name=judge_project).exists(),
        },
    )


@login_required
@require_POST
def task_pause_view(request: HttpRequest, task_id: int) -> HttpResponse:
    task = task_pause(task=_task_or_404(task_id))
    messages.success(request, f"Paused {task.name}: it evaluates nothing new until resumed.")
    return redirect(next_or(request, reverse("tasks:list")))


@login_required
@require_POST
def task_resume_view(request: HttpRequest, task_id: int) -> HttpResponse:
    task = task_resume(task=_task_or_404(task_id))
    messages.success(request, f"Resumed {task.name}: it picks up where it stopped.")
    return redirect(next_or(request, reverse("tasks:list")))


@login_required
@require_POST
def task_duplicate_view(request: HttpRequest, task_id: int) -> HttpResponse:
    copy = task_duplicate(task=_task_or_404(task_id), user=request_user(request))
    messages.success(request, f"Created {copy.name}, paused: check it, then resume it.")
    return redirect("tasks:edit", task_id=copy.pk)


@login_required
@require_http_methods(["GET", "POST"])
def task_delete_view(request: HttpRequest, task_id: int) -> HttpResponse:
    """A confirmation page; the POST deletes the task and its runs (not its results)."""
    task = _task_or_404(task_id)
    if request.method == "POST":
        name = task.name
        task_delete(task=task)
        messages.success(request, f"Deleted task {name}. Its results stay on the spans.")
        return redirect("tasks:list")
    return render(
        request,
        "evalhub/tasks/task_delete.html",
        {"task": task, "run_count": run_list(task=task).count()},
    )


@login_required
@require_http_methods(["GET", "POST"])
def task_backfill(request: HttpRequest, task_id: int) -> HttpResponse:
    """A one-time run of the task over a past time range."""
    task = _task_or_404(task_id)
    if request.method == "POST":
        form = BackfillForm(request.POST)
        if form.is_valid():
            try:
                run = run_backfill_create(
                    task=task,
                    start=form.cleaned_data["start"],
                    end=form.cleaned_data.get("end"),
                    max_items=form.cleaned_data["max_items"],
                    user=request_user(request),
                )
            except RunRejected as exc:
                form.add_rejection(exc)
            else:
                messages.success(
                    request, f"Backfill run #{run.pk} is queued.", extra_tags=RUN_QUEUED_TAG
                )
                return redirect("tasks:run", run_id=run.pk)
    else:
        form = BackfillForm(initial={"start": BackfillForm.initial_start()})
    return render(request, "evalhub/tasks/backfill_form.html", {"task": task, "form": form})
