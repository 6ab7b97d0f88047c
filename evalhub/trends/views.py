"""The project's score trends page: each evaluation's label mix and mean score over time.

The time range uses the trace browser's parameters (``range``, and ``start``/``end`` for
``range=custom``), so links between the two pages keep it; the bucket, the human-annotations
toggle and the names shown are in the URL too. htmx swaps the ``#results`` partial.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.views.decorators.http import require_GET

from evalhub.core.web import htmx_partial
from evalhub.trends.calibration import trends_calibration
from evalhub.trends.selectors import BUCKETS, Bucket, trends_page
from tracing.browser.filters import DEFAULT_RANGE, RANGE_CHOICES, DateTimeLocalInput, window
from tracing.browser.project_tabs import project_tabs
from tracing.models import Project

TEMPLATE: Final = "evalhub/trends.html"
MAX_NAMES: Final = 50


class TrendsForm(forms.Form):
    """The page's GET parameters. A value that does not validate is left out (and shown as an
    error) rather than failing the page: these come from URLs people share and edit."""

    range = forms.ChoiceField(choices=RANGE_CHOICES, required=False, label="Time")
    start = forms.DateTimeField(required=False, label="From", widget=DateTimeLocalInput())
    end = forms.DateTimeField(required=False, label="To", widget=DateTimeLocalInput())
    bucket = forms.ChoiceField(
        choices=[("", "Automatic"), *[(b, f"Per {b}") for b in BUCKETS]],
        required=False,
        label="Buckets",
    )
    human = forms.BooleanField(required=False, label="Include human annotations")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        start, end = cleaned.get("start"), cleaned.get("end")
        if cleaned.get("range") == "custom" and start and end and end <= start:
            self.add_error("end", "The end must be after the start.")
        return cleaned


@dataclass(frozen=True, slots=True)
class TrendsQuery:
    range_key: str
    start: datetime | None
    end: datetime | None
    bucket: Bucket | None
    human: bool
    names: list[str] | None
    range_query: dict[str, str]  # the range's parameters, as given, for links


def _query(request: HttpRequest, form: TrendsForm, *, now: datetime) -> TrendsQuery:
    form.is_valid()
    data: dict[str, Any] = getattr(form, "cleaned_data", {})
    range_key = data.get("range") or ""
    start, end = window(range_key or DEFAULT_RANGE, data.get("start"), data.get("end"), now=now)
    range_query = {"range": range_key} if range_key else {}
    if range_key == "custom":
        for key in ("start", "end"):
            if data.get(key) is not None:
                range_query[key] = request.GET[key]
    names = [name.strip() for name in request.GET.getlist("name") if name.strip()][:MAX_NAMES]
    return TrendsQuery(
        range_key=range_key or DEFAULT_RANGE,
        start=start,
        end=end,
        bucket=data.get("bucket") or None,
        human=bool(data.get("human")),
        names=names or None,
        range_query=range_query,
    )


def _url_or_empty(name: str, **kwargs: str) -> str:
    try:
        return reverse(name, kwargs=kwargs or None)
    except NoReverseMatch:
        return ""


@login_required
@require_GET
def project_trends(request: HttpRequest, project: str) -> HttpResponse:
    """Each evaluation on the project over time: label mix (stacked bars) and mean score."""
    project_row = get_object_or_404(Project, name=project)
    now = timezone.now()
    form = TrendsForm(request.GET)
    query = _query(request, form, now=now)
    page = trends_page(
        project=project_row,
        start=query.start,
        end=query.end,
        bucket=query.bucket,
        names=query.names,
        human=query.human,
        now=now,
    )
    context = {
        "project": project_row,
        "tabs": project_tabs(project_row.name),
        "tab": "trends",
        "form": form,
        "query": query,
        "page": page,
        "range_query": query.range_query,
        "window_start": query.start,
        "window_end": query.end,
        "tasks_url": _url_or_empty("tasks:list"),
        "calibrations": trends_calibration(project=project_row, trends=page.trends),
    }
    partial = htmx_partial(request)
    return render(request, f"{TEMPLATE}#results" if partial else TEMPLATE, context)
