"""The trace browser's filters: a filter-language box and quick filters, one filter path.

Every quick filter (time range, status, span kind, model, evaluated or not) is written as a
clause of the filter language and compiled with ``tracing.query.compile_filter``, the same
compiler the API, tasks and exports use; nothing here filters spans any other way. So a quick
filter means exactly what the same clause typed into the box means, and ``expression()`` shows
the whole filter as one expression.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Final

import django_filters
from django import forms
from django.db.models import QuerySet
from django.http import QueryDict
from django.utils import timezone

from tracing.models import Project, Span, SpanKind, StatusCode
from tracing.query import FilterError, compile_filter
from tracing.selectors.browser import evaluation_names

TIME_RANGES: Final[dict[str, timedelta]] = {
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
ALL_TIME: Final = "all"
RANGE_CHOICES: Final = [
    ("1h", "Last hour"),
    ("24h", "Last 24 hours"),
    ("7d", "Last 7 days"),
    ("30d", "Last 30 days"),
    (ALL_TIME, "All time"),
    ("custom", "Custom"),
]
# Every page with a time range (Projects, the Traces / Spans / Sessions tabs, Score trends)
# starts on this one; a URL with ``range`` keeps the one chosen.
DEFAULT_RANGE: Final = "7d"
NOTHING_CLAUSE: Final = "span_id IS NULL"  # every span has an id: matches no span


def quote(text: str) -> str:
    """A filter-language string literal for ``text``."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def quote_name(text: str) -> str:
    """A quoted field segment (``eval."Q&A"``) for an annotation name."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _moment(value: datetime) -> str:
    return quote(value.isoformat())


def window(
    range_key: str | None,
    start: datetime | None = None,
    end: datetime | None = None,
    *,
    now: datetime | None = None,
) -> tuple[datetime | None, datetime | None]:
    """``[start, end)`` of a time range choice: a preset ends now, ``custom`` uses ``start`` and
    ``end`` (either may be open), ``all`` (or no choice) is all time."""
    if range_key in TIME_RANGES:
        moment = now or timezone.now()
        return moment - TIME_RANGES[range_key], None
    if range_key == "custom":
        return start, end
    return None, None


def with_default_range(params: QueryDict) -> QueryDict:
    """A page's parameters with the default time range when they choose none: every page with
    a range starts on ``DEFAULT_RANGE``; ``range=all`` is all time."""
    if params.get("range"):
        return params
    params = params.copy()
    params["range"] = DEFAULT_RANGE
    return params


class DateTimeLocalInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__(attrs=attrs, format="%Y-%m-%dT%H:%M")


class SpanFilterForm(forms.Form):
    """Validates the filter-language box by compiling it; ``filter_error`` keeps the
    ``FilterError`` (message and position) for the page to show inline."""

    filter_error: FilterError | None = None

    def clean_q(self) -> str:
        text: str = self.cleaned_data.get("q") or ""
        if not text.strip():
            return ""
        try:
            compile_filter(text)
        except FilterError as exc:
            self.filter_error = exc
            raise forms.ValidationError(str(exc), code="filter") from exc
        return text

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        start, end = cleaned.get("start"), cleaned.get("end")
        if cleaned.get("range") == "custom" and start and end and end <= start:
            self.add_error("end", "The end must be after the start.")
        return cleaned


class SpanFilterSet(django_filters.FilterSet):
    """The browser's filters over a span queryset (``browse_spans``). Bound to ``request.GET``;
    ``project`` gives the evaluation names that "has an evaluation" means."""

    q = django_filters.CharFilter(
        method="filter_expression",
        label="Filter",
        strip=False,  # positions in errors count from the text as typed
        widget=forms.SearchInput(
            attrs={
                "placeholder": "e.g. status_code = 'ERROR' and latency_ms > 1000",
                "autocomplete": "off",
                "spellcheck": "false",
                "aria-describedby": "filter-error",
            }
        ),
    )
    range = django_filters.ChoiceFilter(
        choices=RANGE_CHOICES, method="filter_range", label="Time", empty_label=None
    )
    start = django_filters.DateTimeFilter(
        method="filter_start", label="From (UTC)", widget=DateTimeLocalInput()
    )
    end = django_filters.DateTimeFilter(
        method="filter_end", label="To (UTC)", widget=DateTimeLocalInput()
    )
    status = django_filters.MultipleChoiceFilter(
        choices=StatusCode.choices,
        method="filter_status",
        label="Status",
        widget=forms.CheckboxSelectMultiple,
    )
    kind = django_filters.MultipleChoiceFilter(
        choices=SpanKind.choices,
        method="filter_kind",
        label="Kind",
        widget=forms.CheckboxSelectMultiple,
    )
    model = django_filters.CharFilter(
        method="filter_model",
        label="Model",
        widget=forms.TextInput(attrs={"list": "model-names", "placeholder": "any"}),
    )
    evaluated = django_filters.ChoiceFilter(
        choices=[("yes", "Has an evaluation"), ("no", "Has no evaluation")],
        method="filter_evaluated",
        label="Evaluation",
        empty_label="Any",
    )
    evaluation = django_filters.CharFilter(
        method="filter_nothing",  # read by filter_evaluated
        label="Evaluation name",
        widget=forms.TextInput(attrs={"list": "evaluation-names", "placeholder": "any name"}),
    )

    class Meta:
        model = Span
        fields: list[str] = []
        form = SpanFilterForm

    def __init__(
        self,
        data: Any = None,
        queryset: QuerySet[Span] | None = None,
        *,
        project: Project,
        now: datetime | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(data, queryset=queryset, **kwargs)
        self.project = project
        self.now = now or timezone.now()
        self.clauses: list[str] = []

    # --- what the page reads -------------------------------------------------------------

    @property
    def filter_error(self) -> FilterError | None:
        """The filter-language box's error, if it cannot be compiled."""
        if not self.is_bound:
            return None
        self.form.is_valid()
        return getattr(self.form, "filter_error", None)

    @property
    def is_filtering(self) -> bool:
        """Whether any filter narrows the result (after ``qs`` is read)."""
        self.qs  # noqa: B018  (filtering collects the clauses)
        return bool(self.clauses)

    def expression(self) -> str:
        """The whole filter as one filter-language expression (after ``qs`` is read)."""
        self.qs  # noqa: B018
        return " and ".join(
            f"({clause})" if len(self.clauses) > 1 else clause for clause in self.clauses
        )

    # --- filters: each writes a clause and compiles it -----------------------------------

    def _where(self, queryset: QuerySet[Span], clause: str) -> QuerySet[Span]:
        self.clauses.append(clause)
        return queryset.filter(compile_filter(clause))

    def filter_expression(self, queryset: QuerySet[Span], name: str, value: str) -> QuerySet[Span]:
        return self._where(queryset, value.strip()) if value.strip() else queryset

    def filter_range(self, queryset: QuerySet[Span], name: str, value: str) -> QuerySet[Span]:
        if value in ("custom", ALL_TIME):
            return queryset  # custom: filter_start / filter_end
        start, _end = window(value, now=self.now)
        assert start is not None
        return self._where(queryset, f"start_time >= {_moment(start)}")

    def _custom(self) -> bool:
        return self.form.cleaned_data.get("range") == "custom"

    def filter_start(self, queryset: QuerySet[Span], name: str, value: datetime) -> QuerySet[Span]:
        if not self._custom():
            return queryset
        return self._where(queryset, f"start_time >= {_moment(value)}")

    def filter_end(self, queryset: QuerySet[Span], name: str, value: datetime) -> QuerySet[Span]:
        if not self._custom():
            return queryset
        return self._where(queryset, f"start_time < {_moment(value)}")

    def filter_status(
        self, queryset: QuerySet[Span], name: str, value: list[str]
    ) -> QuerySet[Span]:
        return self._where(queryset, f"status_code IN ({', '.join(map(quote, value))})")

    def filter_kind(self, queryset: QuerySet[Span], name: str, value: list[str]) -> QuerySet[Span]:
        return self._where(queryset, f"span_kind IN ({', '.join(map(quote, value))})")

    def filter_model(self, queryset: QuerySet[Span], name: str, value: str) -> QuerySet[Span]:
        return self._where(queryset, f"model_name = {quote(value.strip())}")

    def filter_nothing(self, queryset: QuerySet[Span], name: str, value: Any) -> QuerySet[Span]:
        return queryset

    def filter_evaluated(self, queryset: QuerySet[Span], name: str, value: str) -> QuerySet[Span]:
        chosen = (self.form.cleaned_data.get("evaluation") or "").strip()
        names = [chosen] if chosen else evaluation_names(project=self.project)
        if not names:
            # No evaluations at all: nothing has one, everything has none.
            return self._where(queryset, NOTHING_CLAUSE) if value == "yes" else queryset
        has = " or ".join(f"eval.{quote_name(n)} IS NOT NULL" for n in names)
        return self._where(queryset, has if value == "yes" else f"not ({has})")


__all__ = [
    "ALL_TIME",
    "DEFAULT_RANGE",
    "RANGE_CHOICES",
    "TIME_RANGES",
    "SpanFilterSet",
    "quote",
    "quote_name",
    "window",
    "with_default_range",
]
