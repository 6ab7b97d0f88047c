"""The evaluator's Calibration page (also loaded into the evaluator page as a fragment)."""

from __future__ import annotations

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from evalhub.calibration.selectors import evaluator_calibration
from evalhub.online.trends import BUCKETS
from evalhub.selectors import evaluator_get
from tracing.models import Project

TEMPLATE = "calibration/evaluator_calibration.html"


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
