"""Forms of the trace browser pages that are not filters: table options and the projects' range.

Bad values fall back to defaults rather than failing the page: these come from URLs people
share and edit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django import forms

from tracing.browser.filters import DEFAULT_RANGE, RANGE_CHOICES, DateTimeLocalInput, window
from tracing.browser.selectors import DEFAULT_PAGE_SIZE, PAGE_SIZES, SORTS

SORT_LABELS = {
    "start_time": "Start time",
    "latency": "Latency",
    "tokens": "Tokens",
    "cost": "Cost",
}


@dataclass(frozen=True, slots=True)
class TableOptions:
    sort: str
    descending: bool
    size: int
    after: str | None
    before: str | None
    live: bool
    newer: str | None


class TableOptionsForm(forms.Form):
    sort = forms.ChoiceField(
        choices=[(key, SORT_LABELS[key]) for key in SORTS], required=False, label="Sort by"
    )
    order = forms.ChoiceField(
        choices=[("desc", "Descending"), ("asc", "Ascending")], required=False, label="Order"
    )
    size = forms.TypedChoiceField(
        choices=[(str(n), str(n)) for n in PAGE_SIZES],
        coerce=int,
        required=False,
        label="Rows",
    )
    after = forms.CharField(required=False, max_length=400)
    before = forms.CharField(required=False, max_length=400)
    live = forms.BooleanField(required=False, label="Live")
    newer = forms.CharField(required=False, max_length=400)

    def options(self) -> TableOptions:
        """The options asked for; a field that does not validate takes its default."""
        self.is_valid()
        data: dict[str, Any] = getattr(self, "cleaned_data", {})
        return TableOptions(
            sort=data.get("sort") or "start_time",
            descending=(data.get("order") or "desc") == "desc",
            size=data.get("size") or DEFAULT_PAGE_SIZE,
            after=data.get("after") or None,
            before=data.get("before") or None,
            live=bool(data.get("live")),
            newer=data.get("newer") or None,
        )


class ProjectsRangeForm(forms.Form):
    """The projects page's time range: a preset (default: ``DEFAULT_RANGE``, as on every page
    with a range) or custom."""

    range = forms.ChoiceField(choices=RANGE_CHOICES, required=False, label="Time range")
    start = forms.DateTimeField(required=False, label="From", widget=DateTimeLocalInput())
    end = forms.DateTimeField(required=False, label="To", widget=DateTimeLocalInput())

    DEFAULT_RANGE = DEFAULT_RANGE

    def window(self, *, now: datetime | None = None) -> tuple[datetime | None, datetime | None]:
        """``[start, end)`` asked for; the default range when nothing valid is."""
        if not self.is_valid():
            return window(self.DEFAULT_RANGE, now=now)
        data = self.cleaned_data
        key = data.get("range") or self.DEFAULT_RANGE
        return window(key, data.get("start"), data.get("end"), now=now)

    def selected_range(self) -> str:
        self.is_valid()
        return getattr(self, "cleaned_data", {}).get("range") or self.DEFAULT_RANGE
