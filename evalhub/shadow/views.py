"""The shadow pages of a task: its shadows (and the form that starts one), a shadow's
comparison with the active version, and its actions — promote, discard."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from evalhub.core.buckets import BUCKETS, bucket_of
from evalhub.core.fields import form_error
from evalhub.core.web import found_or_404
from evalhub.identity.auth import request_user
from evalhub.shadow.forms import ShadowStartForm
from evalhub.shadow.models import ShadowVersion
from evalhub.shadow.selectors import FLIP_KINDS, shadow_comparison, shadow_get, shadow_list
from evalhub.shadow.services import ShadowInvalid, shadow_discard, shadow_promote, shadow_start
from evalhub.tasks.models import Task
from evalhub.tasks.selectors import task_get

LIST = "shadow/list.html"
COMPARE = "shadow/compare.html"


def _task(task_id: int) -> Task:
    return found_or_404(task_get(task_id), "task")


def _shadow(task: Task, shadow_id: int) -> ShadowVersion:
    return found_or_404(shadow_get(task=task, shadow_id=shadow_id), "shadow version")


@login_required
def shadow_list_view(request: HttpRequest, task_id: int) -> HttpResponse:
    """GET: the task's shadows and the start form; POST: start one."""
    task = _task(task_id)
    form = ShadowStartForm(request.POST or None, task=task)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            shadow = shadow_start(
                task=task,
                evaluator=data["evaluator"],
                candidate=data["candidate"],
                alignment_run=data["alignment_run"],
                user=request_user(request),
            )
        except ShadowInvalid as exc:
            form_error(form, exc, fields={"alignment_id": "alignment_run"})
        except PermissionDenied as exc:
            form.add_error("candidate", str(exc))
        else:
            messages.success(
                request,
                f"Started a shadow of {shadow.evaluator.name}: the task's next runs evaluate "
                "it beside the active version.",
            )
            return redirect("shadow:compare", task_id=task.pk, shadow_id=shadow.pk)
    context: dict[str, Any] = {"task": task, "form": form, "shadows": shadow_list(task=task)}
    return render(request, LIST, context, status=400 if form.errors else 200)


@login_required
@require_GET
def shadow_compare_view(request: HttpRequest, task_id: int, shadow_id: int) -> HttpResponse:
    task = _task(task_id)
    shadow = _shadow(task, shadow_id)
    bucket = bucket_of(request.GET.get("bucket"), "hour")
    flips = request.GET.get("flips") or None
    if flips not in (None, *FLIP_KINDS):
        flips = None
    comparison = shadow_comparison(shadow=shadow, bucket=bucket)
    flipped = [i for i in comparison.flipped if flips is None or i.flip == flips]
    context = {
        "task": task,
        "shadow": shadow,
        "comparison": comparison,
        "flipped": flipped,
        "flips": flips,
        "flip_kinds": FLIP_KINDS,
        "bucket": bucket,
        "buckets": BUCKETS,
    }
    return render(request, COMPARE, context)


@login_required
@require_POST
def shadow_promote_view(request: HttpRequest, task_id: int, shadow_id: int) -> HttpResponse:
    task = _task(task_id)
    shadow = _shadow(task, shadow_id)
    try:
        version = shadow_promote(shadow=shadow, user=request_user(request))
    except ShadowInvalid as exc:
        messages.error(request, f"Not promoted: the {exc.field} {exc.message}")
    except PermissionDenied as exc:
        messages.error(request, f"Not promoted: {exc}")
    else:
        messages.success(
            request,
            f"Promoted: v{version.number} of {shadow.evaluator.name} is the active version; "
            "past results keep naming the version that produced them.",
        )
    return redirect("shadow:compare", task_id=task.pk, shadow_id=shadow.pk)


@login_required
@require_POST
def shadow_discard_view(request: HttpRequest, task_id: int, shadow_id: int) -> HttpResponse:
    task = _task(task_id)
    shadow = _shadow(task, shadow_id)
    try:
        removed = shadow_discard(shadow=shadow)
    except ShadowInvalid as exc:
        messages.error(request, f"Not discarded: the {exc.field} {exc.message}")
    else:
        messages.success(request, f"Discarded the shadow and its {removed} results.")
    return redirect("shadow:list", task_id=task.pk)
