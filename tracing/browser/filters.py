"""The trace browser's filters: a filter-language box and quick filters, one filter path.

Every quick filter (time range, status, span kind, model, evaluated or not) is written as a
clause of the filter language and compiled with ``tracing.query.compile_filter``, the same
compiler the API, tasks and exports use; nothing here filters spans any other way. So a quick
filter means exactly what the same clause typed into the box means, and ``expression()`` shows
the whole filter as one expression.

On the Traces tab a trace is listed when any of its spans matches (``tracing.query.units``);
the time range picks traces by their start (the root span's), "has no evaluation" keeps the
traces none of whose spans has one, and "root span only" (``root``) asks the root span to
match instead, which is ``parent_id IS NULL`` in the language.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Final

import django_filters
from django import forms
from django.db.models import Q, QuerySet
from django.http import QueryDict
from django.utils import timezone

from annotations.naming import filter_field
from tracing.browser.selectors import evaluation_names
from tracing.browser.tabs import Tab
from tracing.models import Project, Span, SpanKind, StatusCode
from tracing.query import FilterError, compile_filter, trace_matches

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
ROOT_CLAUSE: Final = "parent_id IS NULL"  # "root span only"


def quote(text: str) -> str:
    """A filter-language string literal for ``text``."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


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
    """The browser's filters over a tab's span queryset (``browse_spans``). Bound to
    ``request.GET``; ``project`` gives the evaluation names that "has an evaluation" means;
    ``tab`` says what a row is (on ``traces`` a root span standing for its trace, listed when
    a span of the trace matches)."""

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
        method="filter_start", label="From", widget=DateTimeLocalInput()
    )
    end = django_filters.DateTimeFilter(
        method="filter_end", label="To", widget=DateTimeLocalInput()
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
    root = django_filters.BooleanFilter(
        method="filter_root",
        label="Root span only",
        widget=forms.CheckboxInput(attrs={"value": "1"}),
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
        tab: Tab,
        now: datetime | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(data, queryset=queryset, **kwargs)
        self.project = project
        self.tab = tab
        self.now = now or timezone.now()
        self.clauses: list[str] = []
        self.root_only = False
        self._row_clauses: list[str] = []
        self._match_clauses: list[str] = []
        self._absent_clauses: list[str] = []
        # On the Traces tab, when traces match by any span: the rows before that match (root
        # spans in the time range), for ``browse_page``'s bounded search window.
        self._window_rows: QuerySet[Span] | None = None

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

    # --- filters: each writes a clause; ``filter_queryset`` compiles them -----------------

    @property
    def search_window(self) -> QuerySet[Span] | None:
        """The rows a page of the Traces tab searches when traces match by any span (root
        spans in the time range, before that match), after ``qs`` is read; else None."""
        self.qs  # noqa: B018
        return self._window_rows

    def filter_queryset(self, queryset: QuerySet[Span]) -> QuerySet[Span]:
        self.clauses, self._row_clauses, self._match_clauses = [], [], []
        self._absent_clauses = []
        self.root_only = False
        self._window_rows = None
        super().filter_queryset(queryset)  # the methods below collect the clauses
        rows = queryset
        for clause in self._row_clauses:
            rows = rows.filter(compile_filter(clause))
        if (
            self.tab == "traces"
            and self.root_only
            and (self._match_clauses or self._absent_clauses)
        ):
            # The rows are root spans: the old rule, without a subquery.
            self.clauses.append(ROOT_CLAUSE)
        if (
            self.tab == "traces"
            and not self.root_only
            and (self._match_clauses or self._absent_clauses)
        ):
            self._window_rows = rows
        for clause in self._absent_clauses:  # "none of the trace's spans" (Traces tab only)
            absent = compile_filter(clause)
            rows = rows.exclude(absent if self.root_only else trace_matches(absent))
        if not self._match_clauses:
            return rows
        condition = Q()
        for clause in self._match_clauses:
            condition &= compile_filter(clause)
        if self.tab != "traces" or self.root_only:
            return rows.filter(condition)
        return rows.filter(trace_matches(condition, trace="trace_id"))

    def _where(self, queryset: QuerySet[Span], clause: str, *, row: bool = False) -> QuerySet[Span]:
        """Collect ``clause``; on the Traces tab a ``row`` clause (the time range) applies to
        the trace's root span, the others to any span of the trace."""
        self.clauses.append(clause)
        if row and self.tab == "traces":
            self._row_clauses.append(clause)
        else:
            self._match_clauses.append(clause)
        return queryset

    def filter_root(
        self, queryset: QuerySet[Span], name: str, value: bool | None
    ) -> QuerySet[Span]:
        self.root_only = bool(value)
        return queryset

    def filter_expression(self, queryset: QuerySet[Span], name: str, value: str) -> QuerySet[Span]:
        return self._where(queryset, value.strip()) if value.strip() else queryset

    def filter_range(self, queryset: QuerySet[Span], name: str, value: str) -> QuerySet[Span]:
        if value in ("custom", ALL_TIME):
            return queryset  # custom: filter_start / filter_end
        start, _end = window(value, now=self.now)
        assert start is not None
        return self._where(queryset, f"start_time >= {_moment(start)}", row=True)

    def _custom(self) -> bool:
        return self.form.cleaned_data.get("range") == "custom"

    def filter_start(self, queryset: QuerySet[Span], name: str, value: datetime) -> QuerySet[Span]:
        if not self._custom():
            return queryset
        return self._where(queryset, f"start_time >= {_moment(value)}", row=True)

    def filter_end(self, queryset: QuerySet[Span], name: str, value: datetime) -> QuerySet[Span]:
        if not self._custom():
            return queryset
        return self._where(queryset, f"start_time < {_moment(value)}", row=True)

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
        has = " or ".join(f"{filter_field(n, human=False)} IS NOT NULL" for n in names)
        if value == "yes":
            return self._where(queryset, has)
        if self.tab == "traces":
            # "Has no evaluation": none of the trace's spans has one (not "some span has none").
            self.clauses.append(f"not ({has})")
            self._absent_clauses.append(has)
            return queryset
        return self._where(queryset, f"not ({has})")


__all__ = [
    "ALL_TIME",
    "DEFAULT_RANGE",
    "RANGE_CHOICES",
    "ROOT_CLAUSE",
    "TIME_RANGES",
    "SpanFilterSet",
    "quote",
    "window",
    "with_default_range",
]
