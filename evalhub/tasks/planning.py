"""Which items a run evaluates.

A candidate is a span, a trace or a session of the run's project that matches the task's
filter (a trace or a session when any of its spans does — ``tracing.query.units``, as the trace
browser's lists match them; ``parent_id IS NULL and …`` asks the root span), is complete (no
span of it was ingested during the quiet period), and has not been listed by the task before. Continuous runs
take candidates by ingestion time — so a late span, whatever its start time, is seen when it
arrives — backfills by start time, newest first. Every query is built from the filter
language's ``Q``; no user text reaches the SQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Exists, OuterRef, Q, QuerySet

from evalhub.tasks.models import Granularity, TaskRunItem
from evalhub.tasks.sampling import in_sample
from tracing.models import Session, Span, Trace
from tracing.query import compile_filter, session_matches, trace_matches

CHUNK = 2000


@dataclass(frozen=True, slots=True)
class Candidate:
    pk: int
    key: str  # span_id / trace_id / session_id
    start_time: datetime | None


@dataclass(frozen=True, slots=True)
class Window:
    """``field`` is ``"ingested"`` (continuous) or ``"start"`` (backfill); ``complete_before``:
    an item with a span ingested at or after it is still open."""

    field: str
    start: datetime | None
    end: datetime | None
    complete_before: datetime | None = None


def _span_window(spans: QuerySet[Span], window: Window) -> QuerySet[Span]:
    column = "ingested_at" if window.field == "ingested" else "start_time"
    if window.start is not None:
        spans = spans.filter(**{f"{column}__gte": window.start})
    if window.end is not None:
        spans = spans.filter(**{f"{column}__lt": window.end})
    return spans


def candidates_query(
    *,
    project_id: int,
    granularity: str,
    filter_text: str,
    window: Window,
) -> QuerySet[Any]:
    """The candidates as a queryset of spans, traces or sessions (unordered), whether or not
    the task has listed them before (``unlisted`` leaves those out)."""
    condition = compile_filter(filter_text) if filter_text.strip() else Q()
    spans = Span.objects.filter(project_id=project_id)
    query: QuerySet[Any]
    if granularity == Granularity.SPAN:
        query = _span_window(spans, window).filter(condition)
        if window.complete_before is not None and window.field == "ingested":
            query = query.filter(ingested_at__lt=window.complete_before)
        link = "trace_id"  # unused for spans
    else:
        model = Trace if granularity == Granularity.TRACE else Session
        link = "trace_id" if granularity == Granularity.TRACE else "session_id"
        query = model.objects.filter(project_id=project_id)
        if window.field == "ingested":
            in_window = _span_window(spans, window).filter(**{f"{link}__isnull": False})
            query = query.filter(pk__in=in_window.order_by().values(link))
        else:
            if window.start is not None:
                query = query.filter(start_time__gte=window.start)
            if window.end is not None:
                query = query.filter(start_time__lt=window.end)
        if condition:
            # As in the trace browser: a trace or a session matches when any span does.
            in_project = condition & Q(project_id=project_id)
            if granularity == Granularity.TRACE:
                query = query.filter(trace_matches(in_project, trace="pk"))
            else:
                query = query.filter(session_matches(in_project, session="pk"))
        if window.complete_before is not None:
            open_spans = Span.objects.filter(
                **{link: OuterRef("pk"), "ingested_at__gte": window.complete_before}
            )
            query = query.exclude(Exists(open_spans))
    return query


_KEY_FIELD = {
    Granularity.SPAN: "span_id",
    Granularity.TRACE: "trace_id",
    Granularity.SESSION: "session_id",
}


def candidates_iter(query: QuerySet[Any], granularity: str) -> Iterator[Candidate]:
    """The candidates newest first, streamed (memory stays flat however many there are)."""
    rows = query.order_by("-start_time", "-pk").values_list(
        "pk", _KEY_FIELD[Granularity(granularity)], "start_time"
    )
    for pk, key, start_time in rows.iterator(chunk_size=CHUNK):
        yield Candidate(pk=pk, key=key, start_time=start_time)


class Unlisted:
    """The candidates a task has not listed before, checked a chunk at a time by looking their
    keys up in the task's unique (task, kind, pk) index; ``left_out`` counts the others.

    Not an anti-join in the candidates' SQL: on freshly loaded tables the planner's row
    estimates are near zero, and it then scans every item of the task once per candidate —
    hours for a 100,000-span backfill, while these lookups take milliseconds a chunk."""

    def __init__(self, candidates: Iterator[Candidate], *, task_id: int, granularity: str):
        self.candidates, self.task_id, self.granularity = candidates, task_id, granularity
        self.left_out = 0

    def __iter__(self) -> Iterator[Candidate]:
        chunk: list[Candidate] = []
        for candidate in self.candidates:
            chunk.append(candidate)
            if len(chunk) >= CHUNK:
                yield from self._new(chunk)
                chunk = []
        yield from self._new(chunk)

    def _new(self, chunk: list[Candidate]) -> list[Candidate]:
        if not chunk:
            return []
        listed = set(
            TaskRunItem.objects.filter(
                dedupe_task_id=self.task_id,
                target_kind=self.granularity,
                target_pk__in=[candidate.pk for candidate in chunk],
            ).values_list("target_pk", flat=True)
        )
        self.left_out += len(listed)
        return [candidate for candidate in chunk if candidate.pk not in listed]


def sampled(
    candidates: Iterator[Candidate], *, rate_percent: float, limit: int | None
) -> Iterator[Candidate]:
    """The candidates in the sample, at most ``limit`` of them."""
    taken = 0
    for candidate in candidates:
        if limit is not None and taken >= limit:
            return
        if in_sample(candidate.key, rate_percent):
            taken += 1
            yield candidate


def targets_by_keys(
    *, project_id: int, granularity: str, keys: list[str]
) -> tuple[list[Candidate], list[str]]:
    """The items with these ids in the project (for a manual run), and the ids not found."""
    models: dict[Granularity, type[Span] | type[Trace] | type[Session]] = {
        Granularity.SPAN: Span,
        Granularity.TRACE: Trace,
        Granularity.SESSION: Session,
    }
    model = models[Granularity(granularity)]
    field = _KEY_FIELD[Granularity(granularity)]
    found = {
        key: Candidate(pk=pk, key=key, start_time=start_time)
        for pk, key, start_time in model.objects.filter(
            project_id=project_id, **{f"{field}__in": keys}
        ).values_list("pk", field, "start_time")
    }
    ordered = list(dict.fromkeys(keys))
    return [found[k] for k in ordered if k in found], [k for k in ordered if k not in found]
