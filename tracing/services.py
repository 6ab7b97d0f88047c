"""Writes to the trace store. Trace and session rows are recomputed from their spans, so they
stay right whatever order spans arrive in, over any number of requests, and after deletes."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import Count, Max, Min, Q, Sum
from django.utils import timezone

from tracing.ingest.records import SpanRecord, SpanRecordError, columns_of
from tracing.models import Project, Session, Span, StatusCode, Trace
from tracing.pricing import cost_of

DEFAULT_PROJECT = "default"


@dataclass
class IngestResult:
    received: int = 0
    inserted: int = 0
    duplicates: int = 0
    projects: set[str] = field(default_factory=set)


@transaction.atomic
def project_create(*, name: str, description: str = "") -> Project:
    name = name.strip()
    if not name:
        raise ValueError("name must not be empty")
    return Project.objects.create(name=name, description=description)


def projects_ensure(names: Iterable[str]) -> dict[str, Project]:
    """Projects by name, created when first seen."""
    wanted = sorted(set(names))
    Project.objects.bulk_create([Project(name=n) for n in wanted], ignore_conflicts=True)
    return {p.name: p for p in Project.objects.filter(name__in=wanted)}


@transaction.atomic
def spans_ingest(
    *, records: Sequence[SpanRecord], default_project: str | None = None
) -> IngestResult:
    """Store spans; a span already stored (same span_id) is kept as it was.

    Raises ``SpanRecordError`` before writing anything if a record is invalid.
    """
    result = IngestResult(received=len(records))
    if not records:
        return result
    by_span_id: dict[str, SpanRecord] = {}
    for record in records:
        record.validate()
        by_span_id[record.span_id] = record
    unique = sorted(by_span_id.values(), key=lambda r: r.span_id)

    fallback = (default_project or DEFAULT_PROJECT).strip() or DEFAULT_PROJECT
    projects = projects_ensure(r.project_name or fallback for r in unique)
    result.projects = set(projects)

    # Trace rows first (sorted, so concurrent batches lock in the same order), then lock them.
    trace_project: dict[str, int] = {}
    for record in unique:
        trace_project.setdefault(record.trace_id, projects[record.project_name or fallback].pk)
    Trace.objects.bulk_create(
        [Trace(trace_id=t, project_id=p) for t, p in sorted(trace_project.items())],
        ignore_conflicts=True,
    )
    traces = {
        t.trace_id: t
        for t in Trace.objects.select_for_update()
        .filter(trace_id__in=list(trace_project))
        .order_by("id")
        .only("id", "trace_id", "project_id", "session_id")
    }

    rows = [(record, columns_of(record)) for record in unique]

    # Sessions, by (project, session.id).
    session_keys = sorted(
        {(traces[r.trace_id].project_id, c["session_key"]) for r, c in rows if c["session_key"]}
    )
    sessions: dict[tuple[int, str], int] = {}
    if session_keys:
        Session.objects.bulk_create(
            [Session(project_id=p, session_id=s) for p, s in session_keys], ignore_conflicts=True
        )
        query = Q()
        for project_id, session_id in session_keys:
            query |= Q(project_id=project_id, session_id=session_id)
        for session in Session.objects.select_for_update().filter(query).order_by("id"):
            sessions[(session.project_id, session.session_id)] = session.pk

    existing = set(
        Span.objects.filter(span_id__in=[r.span_id for r in unique]).values_list(
            "span_id", flat=True
        )
    )
    now = timezone.now()
    new_spans = []
    for record, columns in rows:
        if record.span_id in existing:
            continue
        trace = traces[record.trace_id]
        latency = (record.end_time - record.start_time).total_seconds() * 1000.0
        new_spans.append(
            Span(
                project_id=trace.project_id,
                trace_id=trace.pk,
                session_id=sessions.get((trace.project_id, columns["session_key"])),
                span_id=record.span_id,
                parent_id=record.parent_id,
                name=record.name[:1024],
                status_code=record.status_code,
                status_message=record.status_message or "",
                start_time=record.start_time,
                end_time=record.end_time,
                latency_ms=latency,
                events=record.events,
                cost=cost_of(
                    columns["model_name"], columns["prompt_tokens"], columns["completion_tokens"]
                ),
                ingested_at=now,
                **columns,
            )
        )
    Span.objects.bulk_create(new_spans, ignore_conflicts=True, batch_size=500)
    result.inserted = len(new_spans)
    result.duplicates = len(records) - len(new_spans)

    touched_sessions = set(sessions.values()) | {
        t.session_id for t in traces.values() if t.session_id
    }
    traces_recompute([t.pk for t in traces.values()])
    sessions_recompute(touched_sessions)
    return result


def traces_recompute(trace_pks: Iterable[int]) -> None:
    """Recompute trace rows from their spans; a trace left with no span is deleted."""
    pks = sorted(set(trace_pks))
    if not pks:
        return
    aggregates = {
        row["trace_id"]: row
        for row in Span.objects.filter(trace_id__in=pks)
        .values("trace_id")
        .annotate(
            start=Min("start_time"),
            end=Max("end_time"),
            spans=Count("id"),
            errors=Count("id", filter=Q(status_code=StatusCode.ERROR)),
            prompt=Sum("prompt_tokens"),
            completion=Sum("completion_tokens"),
            total=Sum("total_tokens"),
            cost_sum=Sum("cost"),
            session_pk=Min("session_id"),
        )
    }
    roots: dict[int, dict[str, Any]] = {}
    for root in (
        Span.objects.filter(trace_id__in=pks, parent_id__isnull=True)
        .order_by("trace_id", "start_time", "id")
        .values("trace_id", "span_id", "name", "latency_ms", "session_id")
    ):
        roots.setdefault(root["trace_id"], root)
    # Until the root span arrives, the trace is shown by its earliest span.
    missing = [pk for pk in pks if pk in aggregates and pk not in roots]
    earliest: dict[int, dict[str, Any]] = {}
    if missing:
        for span in (
            Span.objects.filter(trace_id__in=missing)
            .order_by("trace_id", "start_time", "id")
            .values("trace_id", "span_id", "name", "latency_ms", "session_id")
        ):
            earliest.setdefault(span["trace_id"], span)

    empty = [pk for pk in pks if pk not in aggregates]
    if empty:
        Trace.objects.filter(pk__in=empty).delete()
    updated = []
    for trace in Trace.objects.filter(pk__in=list(aggregates)):
        agg = aggregates[trace.pk]
        root = roots.get(trace.pk)
        shown = root or earliest.get(trace.pk)
        trace.start_time, trace.end_time = agg["start"], agg["end"]
        trace.span_count, trace.error_count = agg["spans"], agg["errors"]
        trace.prompt_tokens = agg["prompt"] or 0
        trace.completion_tokens = agg["completion"] or 0
        trace.total_tokens = agg["total"] or 0
        trace.cost = agg["cost_sum"] or 0.0
        trace.root_span_id = root["span_id"] if root else None
        trace.root_span_name = shown["name"] if shown else ""
        if root:
            trace.latency_ms = root["latency_ms"]
        else:
            trace.latency_ms = (agg["end"] - agg["start"]).total_seconds() * 1000.0
        trace.session_id = (shown or {}).get("session_id") or agg["session_pk"]
        updated.append(trace)
    Trace.objects.bulk_update(
        updated,
        [
            "start_time",
            "end_time",
            "span_count",
            "error_count",
            "prompt_tokens",
            "completion_tokens",
            "total_tokens",
            "cost",
            "root_span_id",
            "root_span_name",
            "latency_ms",
            "session_id",
        ],
    )


def sessions_recompute(session_pks: Iterable[int]) -> None:
    """Recompute session rows from their traces; a session left with no trace is deleted."""
    pks = sorted(set(session_pks))
    if not pks:
        return
    aggregates = {
        row["session_id"]: row
        for row in Trace.objects.filter(session_id__in=pks)
        .values("session_id")
        .annotate(
            start=Min("start_time"),
            end=Max("end_time"),
            traces=Count("id"),
            spans=Sum("span_count"),
            errors=Sum("error_count"),
            prompt=Sum("prompt_tokens"),
            completion=Sum("completion_tokens"),
            total=Sum("total_tokens"),
            cost_sum=Sum("cost"),
        )
    }
    empty = [pk for pk in pks if pk not in aggregates]
    if empty:
        Session.objects.filter(pk__in=empty).delete()
    updated = []
    for session in Session.objects.filter(pk__in=list(aggregates)):
        agg = aggregates[session.pk]
        session.start_time, session.end_time = agg["start"], agg["end"]
        session.trace_count = agg["traces"]
        session.span_count = agg["spans"] or 0
        session.error_count = agg["errors"] or 0
        session.prompt_tokens = agg["prompt"] or 0
        session.completion_tokens = agg["completion"] or 0
        session.total_tokens = agg["total"] or 0
        session.cost = agg["cost_sum"] or 0.0
        updated.append(session)
    Session.objects.bulk_update(
        updated,
        [
            "start_time",
            "end_time",
            "trace_count",
            "span_count",
            "error_count",
            "prompt_tokens",
            "completion_tokens",
            "total_tokens",
            "cost",
        ],
    )


@transaction.atomic
def spans_delete(*, span_ids: Sequence[str], project: Project | None = None) -> int:
    """Delete spans for good, with their annotations; unknown ids are ignored.

    Returns how many spans were deleted. Traces and sessions are recomputed (and removed when
    nothing is left in them).
    """
    query = Span.objects.filter(span_id__in=list(span_ids))
    if project is not None:
        query = query.filter(project=project)
    trace_pks = sorted(set(query.values_list("trace_id", flat=True)))
    if not trace_pks:
        return 0
    list(Trace.objects.select_for_update().filter(pk__in=trace_pks).order_by("id").values("id"))
    session_pks = set(
        Trace.objects.filter(pk__in=trace_pks, session__isnull=False).values_list(
            "session_id", flat=True
        )
    )
    _, per_model = query.delete()
    traces_recompute(trace_pks)
    sessions_recompute(session_pks)
    return per_model.get(Span._meta.label, 0)


__all__ = [
    "DEFAULT_PROJECT",
    "IngestResult",
    "SpanRecordError",
    "project_create",
    "projects_ensure",
    "sessions_recompute",
    "spans_delete",
    "spans_ingest",
    "traces_recompute",
]
