"""The evaluator's Calibration page (also loaded into the evaluator page as a fragment), and
the task form's backfill estimate."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from evalhub.calibration.estimate import JudgeInput, backfill_estimate, duration_text
from evalhub.calibration.forms import TaskCalibrationForm
from evalhub.calibration.models import CalibrationSampling, DisagreementRouting
from evalhub.calibration.routing import (
    RoutingInvalid,
    disagreement_routing_clear,
    disagreement_routing_set,
)
from evalhub.calibration.sampling import (
    SamplingInvalid,
    calibration_sampling_clear,
    calibration_sampling_set,
)
from evalhub.calibration.selectors import evaluator_calibration
from evalhub.core.buckets import BUCKETS, bucket_of
from evalhub.core.web import htmx_partial
from evalhub.evaluators.selectors import evaluator_get, evaluator_version_latest
from evalhub.tasks.models import Task
from evalhub.tasks.selectors import task_get
from tracing.models import Project
from tracing.query import FilterError

TEMPLATE = "calibration/evaluator_calibration.html"
ESTIMATE_ID = "backfill-estimate"
TEST_ESTIMATE_ID = "test-estimate"


class CalibrationForm(forms.Form):
    project = forms.ModelChoiceField(
        queryset=Project.objects.order_by("name"),
        to_field_name="name",
        required=False,
        empty_label="Every project",
    )
    bucket = forms.ChoiceField(choices=[(b, f"Per {b}") for b in BUCKETS], required=False)


@login_required
@require_GET
def evaluator_calibration_page(request: HttpRequest, ident: str) -> HttpResponse:
    """Each version's agreement with people over time; ``?fragment=1`` (or htmx) renders the
    part the evaluator page loads."""
    evaluator = evaluator_get(ident)
    if evaluator is None:
        raise Http404("no such evaluator")
    form = CalibrationForm(request.GET)
    form.is_valid()
    data = getattr(form, "cleaned_data", {})
    bucket = bucket_of(data.get("bucket"), "day")
    calibration = evaluator_calibration(
        project=data.get("project"), name=evaluator.annotation_name, bucket=bucket
    )
    context = {"evaluator": evaluator, "form": form, "calibration": calibration}
    partial = request.GET.get("fragment") or htmx_partial(request)
    return render(request, f"{TEMPLATE}#calibration" if partial else TEMPLATE, context)


ESTIMATE_FIELDS = ("project", "evaluators", "granularity", "filter", "sampling_rate", "provider")


@login_required
@require_POST
def task_form_estimate(request: HttpRequest) -> HttpResponse:
    """The task form's backfill estimate (the whole form posted): the items the backfill
    would evaluate, judge calls, tokens, cost and duration — a fragment."""
    from evalhub.tasks.dryrun import DRY_RUN_LIMIT
    from evalhub.tasks.forms import BackfillForm, TaskForm

    # ``estimate=test``: the form's "Test task" (a few newest items, no window), else the
    # backfill the form describes.
    test_run = request.POST.get("estimate") == "test"
    form = TaskForm(request.POST)
    form.is_valid()
    problems = [
        f"{form.fields[name].label or name.capitalize()}: {' '.join(map(str, errors))}"
        for name, errors in form.errors.items()
        if name in ESTIMATE_FIELDS
    ]
    window: dict[str, Any] = {"start": None, "end": None, "max_items": DRY_RUN_LIMIT}
    if not test_run:
        backfill = BackfillForm(request.POST, prefix="backfill")
        if backfill.is_valid():
            window = backfill.cleaned_data
        problems += [
            f"Backfill {backfill.fields[name].label if name in backfill.fields else ''}: "
            f"{' '.join(map(str, errors))}"
            for name, errors in backfill.errors.items()
        ]
    if not problems and not form.cleaned_data.get("evaluators"):
        problems.append("Choose at least one evaluator.")
    estimate_id = TEST_ESTIMATE_ID if test_run else ESTIMATE_ID
    context: dict[str, Any] = {"estimate": None, "problems": problems, "estimate_id": estimate_id}
    if not problems:
        data = form.cleaned_data
        judges = [
            JudgeInput(
                version=evaluator_version_latest(evaluator=entry.evaluator),
                variables=entry.variables,
                provider=data.get("provider"),
                model=data.get("model") or "",
            )
            for entry in form.evaluator_entries()
        ]
        try:
            estimate = backfill_estimate(
                project_id=data["project"].pk,
                granularity=data["granularity"],
                filter_text=data.get("filter") or "",
                sampling_rate=data["sampling_rate"],
                judges=judges,
                start=window["start"],
                end=window.get("end"),
                max_items=window["max_items"],
            )
        except FilterError as exc:
            context["problems"] = [f"Filter: {exc}"]
        else:
            context |= {"estimate": estimate, "duration": duration_text(estimate.seconds)}
    return render(request, "calibration/_estimate.html", context)


# --- a task's calibration: sampling into a queue, disagreements to review ----------------------

TASK_TEMPLATE = "calibration/task_calibration.html"


def _initial(task: Task) -> dict[str, Any]:
    sampling = CalibrationSampling.objects.filter(task=task).first()
    routing = DisagreementRouting.objects.filter(task=task).first()
    initial: dict[str, Any] = {"stratify": True, "judge": True}
    if sampling is not None:
        initial |= {
            "sampling": True,
            "rate_percent": sampling.rate_percent,
            "stratify": sampling.stratify,
            "queue": sampling.queue_id,
            "evaluator": sampling.evaluator_id,
        }
    if routing is not None:
        initial |= {
            "routing": True,
            "review_queue": routing.queue_id,
            "judge": routing.judge,
            "people": routing.people,
        }
    return initial


@login_required
@require_http_methods(["GET", "POST"])
def task_calibration_page(request: HttpRequest, task_id: int) -> HttpResponse:
    """The task's calibration sampling and disagreement routing: the form, what each has done
    so far (the strata, the items routed). A bad input is a form error; nothing is saved."""
    task = task_get(task_id)
    if task is None:
        raise Http404("no such task")
    partial = htmx_partial(request)
    status, saved = 200, False
    if request.method == "POST":
        form = TaskCalibrationForm(request.POST, task=task)
        saved = form.is_valid() and _save(task, form)
        if saved and not partial:
            messages.success(request, "Calibration settings saved.")
            return redirect("calibration:task", task_id=task.pk)
        if saved:
            form = TaskCalibrationForm(initial=_initial(task), task=task)
        elif not partial:
            status = 400
    else:
        form = TaskCalibrationForm(initial=_initial(task), task=task)
    context = {
        "task": task,
        "form": form,
        "saved": saved,
        "sampling": CalibrationSampling.objects.filter(task=task).select_related("queue").first(),
        "routing": DisagreementRouting.objects.filter(task=task).select_related("queue").first(),
    }
    # htmx swaps the settings part in place (its errors included); a plain POST gets the page.
    template = (
        f"{TASK_TEMPLATE}#settings" if partial and request.method == "POST" else TASK_TEMPLATE
    )
    return render(request, template, context, status=status)


def _save(task: Task, form: TaskCalibrationForm) -> bool:
    """Apply both settings in one transaction; a service's refusal becomes the form error of
    its field and nothing is saved."""
    data = form.cleaned_data
    try:
        with transaction.atomic():
            if data.get("sampling"):
                calibration_sampling_set(
                    task=task,
                    queue=data["queue"],
                    rate_percent=data["rate_percent"],
                    evaluator=data.get("evaluator"),
                    stratify=bool(data.get("stratify")),
                )
            else:
                calibration_sampling_clear(task=task)
            if data.get("routing"):
                disagreement_routing_set(
                    task=task,
                    queue=data["review_queue"],
                    judge=bool(data.get("judge")),
                    people=bool(data.get("people")),
                    evaluator=data.get("evaluator"),
                )
            else:
                disagreement_routing_clear(task=task)
    except SamplingInvalid as exc:
        form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        return False
    except RoutingInvalid as exc:
        field = {"queue": "review_queue"}.get(exc.field, exc.field)
        form.add_error(field if field in form.fields else None, exc.message)
        return False
    return True
