"""The spans behind the trace browser's bulk actions: the rows a user selected, or a tab's
whole filtered result, by the unit a row stands for (a span, a trace or a session)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from django.db.models import QuerySet

from tracing.browser.tabs import Tab
from tracing.models import Project, Span


def selection_spans(*, project: Project, tab: Tab, keys: Iterable[str]) -> QuerySet[Span]:
    """The spans of the rows a user selected, newest first: the selected spans, every span of
    the selected traces, or every span of the selected sessions (by their user-facing ids)."""
    keys = [key for key in keys if key]
    query = Span.objects.filter(project=project)
    if tab == "spans":
        query = query.filter(span_id__in=keys)
    elif tab == "traces":
        query = query.filter(trace__trace_id__in=keys)
    else:
        query = query.filter(session__session_id__in=keys)
    return query.order_by("-start_time", "-id")


def result_spans(
    *, project: Project, tab: Tab, spans: QuerySet[Span], filtering: bool
) -> QuerySet[Span]:
    """Every span of a tab's filtered result, newest first: the matching spans, every span of
    the matching traces (root spans), or every span of the sessions with a matching span."""
    if tab == "spans":
        return spans.order_by("-start_time", "-id")
    query = Span.objects.filter(project=project)
    if tab == "traces":
        if filtering:
            query = query.filter(trace_id__in=spans.order_by().values("trace_id"))
    elif filtering:
        query = query.filter(session_id__in=spans.order_by().values("session_id"))
    else:
        query = query.filter(session__isnull=False)
    return query.order_by("-start_time", "-id")


# The unit a tab's row stands for, as a column of the span table: deleting "all matching"
# removes whole units (every span of a matching trace or session), a batch of units at a time.
_UNIT_COLUMNS: Final[dict[str, str]] = {
    "spans": "id",
    "traces": "trace_id",
    "sessions": "session_id",
}


@dataclass(frozen=True, slots=True)
class ResultSize:
    rows: int  # traces, spans or sessions, as the tab counts them
    spans: int  # every span that goes with them


def result_units(
    *, tab: Tab, spans: QuerySet[Span], as_of: datetime, after: int | None = None
) -> QuerySet[Any]:
    """The pks of the units (spans, traces or sessions) of a tab's filtered result, counting
    only spans ingested at or before ``as_of``, in ascending order from after ``after`` (for
    keyset batches)."""
    column = _UNIT_COLUMNS[tab]
    matching = spans.filter(ingested_at__lte=as_of).order_by()
    if after is not None:
        matching = matching.filter(**{f"{column}__gt": after})
    if tab == "sessions":
        matching = matching.filter(session__isnull=False)
    units = matching.values_list(column, flat=True).order_by(column)
    return units if tab == "spans" else units.distinct()


def unit_spans(
    *, project: Project, tab: Tab, units: QuerySet[Any] | Sequence[int], as_of: datetime
) -> QuerySet[Span]:
    """Every span of these units ingested at or before ``as_of``: what deleting them removes."""
    return Span.objects.filter(
        project=project, ingested_at__lte=as_of, **{f"{_UNIT_COLUMNS[tab]}__in": units}
    )


def result_size(
    *, project: Project, tab: Tab, spans: QuerySet[Span], as_of: datetime
) -> ResultSize:
    """How many rows a tab's filtered result has, and how many spans go with them, counting
    spans ingested at or before ``as_of`` (``result_units`` / ``unit_spans``)."""
    units = result_units(tab=tab, spans=spans, as_of=as_of)
    return ResultSize(
        rows=units.order_by().count(),
        spans=unit_spans(project=project, tab=tab, units=units.order_by(), as_of=as_of).count(),
    )


def span_ids_of(query: QuerySet[Span], *, limit: int) -> list[str]:
    """The span ids of a span query, at most ``limit`` (the caller refuses more)."""
    return list(query.order_by().values_list("span_id", flat=True)[: limit + 1])
