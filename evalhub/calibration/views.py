"""The evaluator's Calibration page (also loaded into the evaluator page as a fragment), and
the task form's backfill estimate."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from evalhub.calibration.estimate import JudgeInput, backfill_estimate, duration_text
from evalhub.calibration.selectors import evaluator_calibration
from evalhub.core.buckets import BUCKETS
from evalhub.evaluators.selectors import evaluator_get, evaluator_version_latest
from tracing.models import Project
from tracing.query import FilterError

TEMPLATE = "calibration/evaluator_calibration.html"
ESTIMATE_ID = "backfill-estimate"


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
    bucket = data.get("bucket") or "day"
    calibration = evaluator_calibration(
        project=data.get("project"), name=evaluator.annotation_name, bucket=bucket
    )
    context = {"evaluator": evaluator, "form": form, "calibration": calibration}
    htmx = getattr(request, "htmx", None)
    partial = request.GET.get("fragment") or (bool(htmx) and not htmx.history_restore_request)
    return render(request, f"{TEMPLATE}#calibration" if partial else TEMPLATE, context)


ESTIMATE_FIELDS = ("project", "evaluators", "granularity", "filter", "sampling_rate", "provider")


@login_required
@require_POST
def task_form_estimate(request: HttpRequest) -> HttpResponse:
    """The task form's backfill estimate (the whole form posted): the items the backfill
    would evaluate, judge calls, tokens, cost and duration — a fragment."""
    from evalhub.tasks.forms import BackfillForm, TaskForm

    form = TaskForm(request.POST)
    backfill = BackfillForm(request.POST, prefix="backfill")
    form.is_valid()
    backfill.is_valid()
    problems = [
        f"{form.fields[name].label or name.capitalize()}: {' '.join(errors)}"
        for name, errors in form.errors.items()
        if name in ESTIMATE_FIELDS
    ] + [
        f"Backfill {backfill.fields[name].label if name in backfill.fields else ''}: "
        f"{' '.join(errors)}"
        for name, errors in backfill.errors.items()
    ]
    if not problems and not form.cleaned_data.get("evaluators"):
        problems.append("Choose at least one evaluator.")
    context: dict[str, Any] = {"estimate": None, "problems": problems, "estimate_id": ESTIMATE_ID}
    if not problems:
        data, window = form.cleaned_data, backfill.cleaned_data
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
