"""Writes to the trace store. Trace and session rows are recomputed from their spans, so they
stay right whatever order spans arrive in, over any number of requests, and after deletes."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from tracing.models import Project, Session, Span, StatusCode, Trace
from tracing.store.bulk import spans_insert
from tracing.store.hourly import trace_hours_forget, trace_hours_forget_project
from tracing.store.pricing import cost_of
from tracing.store.records import (
    RejectedSpan,
    SpanRecord,
    SpanRecordError,
    columns_of,
    row_problem,
    span_time_window,
)
from tracing.store.rollups import rows_update, sessions_rollup, traces_rollup
from tracing.store.selectors import span_ids_resolve

logger = logging.getLogger(__name__)

DEFAULT_PROJECT = "default"


@dataclass
class IngestResult:
    received: int = 0
    inserted: int = 0
    duplicates: int = 0
    projects: set[str] = field(default_factory=set)
    rejected: list[RejectedSpan] = field(default_factory=list)


class ProjectNameTaken(ValueError):
    """Another project already has this name."""


@transaction.atomic
def project_create_unique(*, name: str, description: str = "") -> Project:
    """Create a project; ``ProjectNameTaken`` when the name is in use, ``ValueError`` when empty."""
    name = name.strip()
    if not name:
        raise ValueError("name must not be empty")
    if len(name) > Project._meta.get_field("name").max_length:  # type: ignore[operator]  # a CharField has a max_length
        raise ValueError("name is longer than 200 characters")
    try:
        with transaction.atomic():
            return Project.objects.create(name=name, description=description)
    except IntegrityError as exc:
        raise ProjectNameTaken(f"a project named {name!r} already exists") from exc


@transaction.atomic
def project_update(*, project: Project, description: str) -> Project:
    project.description = description
    project.save(update_fields=["description", "updated_at"])
    return project


def _delete_in_batches(query: QuerySet[Any], batch_size: int = 5000) -> None:
    """Delete a query's rows a batch of ids at a time, so memory stays bounded."""
    while True:
        ids = list(query.order_by("id").values_list("id", flat=True)[:batch_size])
        if not ids:
            return
        query.model._default_manager.filter(id__in=ids).delete()


# What the layers above keep of a project, deleted before its spans (annotations register
# theirs when their app is ready): the store never imports them, and no cascade walks the rows.
PROJECT_DELETE_FIRST: list[Callable[[Project], object]] = []


@transaction.atomic
def project_delete(*, project: Project) -> None:
    """Delete a project with its annotations, spans, traces and sessions."""
    trace_hours_forget_project(project)
    for delete_first in PROJECT_DELETE_FIRST:
        delete_first(project)
    _delete_in_batches(Span.objects.filter(project=project))
    _delete_in_batches(Trace.objects.filter(project=project))
    _delete_in_batches(Session.objects.filter(project=project))
    project.delete()


def projects_ensure(names: Iterable[str]) -> dict[str, Project]:
    """Projects by name, created when first seen."""
    wanted = sorted(set(names))
    Project.objects.bulk_create([Project(name=n) for n in wanted], ignore_conflicts=True)
    return {p.name: p for p in Project.objects.filter(name__in=wanted)}


# Ids bound in one statement at most: PostgreSQL takes 65,535 parameters a statement, SQLite
# 32,766; a batch of spans from thousands of traces is read and written this many at a time.
QUERY_CHUNK: Final = 2000


def _chunks(items: Sequence[Any], size: int = QUERY_CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@transaction.atomic
def spans_ingest(
    *, records: Sequence[SpanRecord], default_project: str | None = None
) -> IngestResult:
    """Store the valid spans of a batch; the others are left out and listed in
    ``result.rejected``, each with its reason (OTLP's partial success).

    A span is rejected when it is invalid (``SpanRecord.validate``, ``row_problem``) or when
    its span id is already stored in another trace. A span already stored in the same trace is
    kept as it was (an exporter's retry) and counted in ``duplicates``.

    A span joins its trace's project: the project of the trace's first stored span (or, for a
    trace new in this batch, of its first span in the batch); ``project_name`` else
    ``default_project`` else "default" name it. A span that names another project is stored in
    the trace's project all the same, with a warning in the log.
    """
    result = IngestResult(received=len(records))
    if not records:
        return result
    window = span_time_window()
    rows_by_span: dict[str, tuple[SpanRecord, dict[str, Any]]] = {}
    for record in records:
        try:
            record.validate(window=window)
            columns = columns_of(record)
            problem = row_problem(record, columns)
        except SpanRecordError as exc:
            problem = str(exc)
        if problem is not None:
            result.rejected.append(RejectedSpan(record.trace_id, record.span_id, problem))
        elif record.span_id in rows_by_span:
            result.duplicates += 1
        else:
            rows_by_span[record.span_id] = (record, columns)

    # Spans already stored: the same span sent again is a duplicate; the same id in another
    # trace is refused rather than dropped (it would leave an empty trace behind).
    for chunk in _chunks(sorted(rows_by_span)):
        for span_id, trace_id, project_name in Span.objects.filter(span_id__in=chunk).values_list(
            "span_id", "trace__trace_id", "project__name"
        ):
            record, _ = rows_by_span.pop(span_id)
            if trace_id == record.trace_id:
                result.duplicates += 1
            else:
                result.rejected.append(
                    RejectedSpan(
                        record.trace_id,
                        span_id,
                        f"span id {span_id} is already stored in trace {trace_id} "
                        f"(project {project_name!r})",
                    )
                )
    if not rows_by_span:
        return result
    rows = sorted(rows_by_span.values(), key=lambda row: row[0].span_id)

    # Which project each trace is in: the stored trace's, else its first span's in the batch.
    fallback = (default_project or DEFAULT_PROJECT).strip() or DEFAULT_PROJECT
    named: dict[str, str] = {}
    for record, _ in rows_by_span.values():  # batch order
        named.setdefault(record.trace_id, record.project_name or fallback)
    stored_projects: dict[str, str] = {}
    for chunk in _chunks(sorted(named)):
        stored_projects.update(
            Trace.objects.filter(trace_id__in=chunk).values_list("trace_id", "project__name")
        )
    _log_project_conflicts(rows_by_span.values(), {**named, **stored_projects}, fallback)
    new_traces = {t: p for t, p in named.items() if t not in stored_projects}
    projects = projects_ensure(new_traces.values())
    result.projects = set(projects) | set(stored_projects.values())

    # Trace rows first (sorted, so concurrent batches lock in the same order), then lock them.
    Trace.objects.bulk_create(
        [Trace(trace_id=t, project_id=projects[p].pk) for t, p in sorted(new_traces.items())],
        ignore_conflicts=True,
    )
    traces: dict[str, Trace] = {}
    for chunk in _chunks(sorted(named)):
        traces.update(
            (t.trace_id, t)
            for t in Trace.objects.select_for_update()
            .filter(trace_id__in=chunk)
            .order_by("trace_id")
            .only("id", "trace_id", "project_id", *_TRACE_ROLLUP_FIELDS)
        )

    # Sessions, by (project, session.id).
    session_keys = sorted(
        {(traces[r.trace_id].project_id, c["session_key"]) for r, c in rows if c["session_key"]}
    )
    sessions: dict[tuple[int, str], int] = {}
    if session_keys:
        Session.objects.bulk_create(
            [Session(project_id=p, session_id=s) for p, s in session_keys], ignore_conflicts=True
        )
        wanted = set(session_keys)
        for chunk in _chunks(session_keys):
            for pk, project_id, session_id in (
                Session.objects.select_for_update()
                .filter(
                    project_id__in={p for p, _ in chunk},
                    session_id__in={s for _, s in chunk},
                )
                .order_by("id")
                .values_list("id", "project_id", "session_id")
            ):
                if (project_id, session_id) in wanted:
                    sessions[(project_id, session_id)] = pk

    now = timezone.now()
    new_spans = []
    for record, columns in rows:
        trace = traces[record.trace_id]
        new_spans.append(
            {
                **columns,
                "project_id": trace.project_id,
                "trace_id": trace.pk,
                "session_id": sessions.get((trace.project_id, columns["session_key"])),
                "span_id": record.span_id,
                "parent_id": record.parent_id,
                "name": record.name[:1024],
                "status_code": record.status_code,
                "status_message": record.status_message or "",
                "start_time": record.start_time,
                "end_time": record.end_time,
                "latency_ms": (record.end_time - record.start_time).total_seconds() * 1000.0,
                "events": record.events,
                "cost": cost_of(
                    columns["model_name"], columns["prompt_tokens"], columns["completion_tokens"]
                ),
                "ingested_at": now,
            }
        )
    exact = spans_insert(new_spans)
    result.inserted = len(new_spans)

    if exact:
        _rollups_merge(list(traces.values()), new_spans)
    else:  # a concurrent writer stored some of these spans: count from the table instead
        touched_sessions = set(sessions.values()) | {
            t.session_id for t in traces.values() if t.session_id
        }
        # Also drops a trace this batch created whose spans all went elsewhere meanwhile.
        traces_recompute([t.pk for t in traces.values()])
        sessions_recompute(touched_sessions)
        result.inserted = Span.objects.filter(
            span_id__in=[s["span_id"] for s in new_spans], ingested_at=now
        ).count()
        result.duplicates += len(new_spans) - result.inserted
    return result


def _log_project_conflicts(
    rows: Iterable[tuple[SpanRecord, dict[str, Any]]], trace_projects: dict[str, str], fallback: str
) -> None:
    """Warn, once a trace, when a span names a project other than its trace's."""
    warned: set[str] = set()
    for record, _ in rows:
        wanted = record.project_name or fallback
        actual = trace_projects[record.trace_id]
        if wanted != actual and record.trace_id not in warned:
            warned.add(record.trace_id)
            logger.warning(
                "trace %s: span %s names project %r but the trace is in project %r; "
                "its spans are stored in %r",
                record.trace_id,
                record.span_id,
                wanted,
                actual,
                actual,
            )


_TRACE_ROLLUP_FIELDS = [
    "start_time", "end_time", "span_count", "error_count", "prompt_tokens", "completion_tokens",
    "total_tokens", "cost", "root_span_id", "root_span_name", "latency_ms", "session_id",
]  # fmt: skip
_SESSION_ROLLUP_FIELDS = [
    "start_time", "end_time", "trace_count", "span_count", "error_count", "prompt_tokens",
    "completion_tokens", "total_tokens", "cost",
]  # fmt: skip
_SUMMED = [
    "span_count",
    "error_count",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cost",
]


def _rollups_merge(traces: list[Trace], new_spans: list[dict[str, Any]]) -> None:
    """Add newly inserted spans to their (locked) trace rows, and those to their sessions.

    Exact because the trace rows are locked and ``new_spans`` are exactly the rows inserted;
    reading the spans back would need the table's statistics to be fresh to stay fast.
    """
    by_trace: dict[int, list[dict[str, Any]]] = {}
    for span in new_spans:
        by_trace.setdefault(span["trace_id"], []).append(span)
    before = {
        t.pk: (t.session_id, {f: getattr(t, f) for f in _SUMMED}, t.start_time, t.end_time)
        for t in traces
    }
    trace_rows = []
    for trace in traces:
        spans = sorted(by_trace.get(trace.pk, ()), key=lambda s: s["start_time"])
        if not spans:
            continue
        trace.span_count += len(spans)
        trace.error_count += sum(1 for s in spans if s["status_code"] == StatusCode.ERROR)
        trace.prompt_tokens += sum(s["prompt_tokens"] or 0 for s in spans)
        trace.completion_tokens += sum(s["completion_tokens"] or 0 for s in spans)
        trace.total_tokens += sum(s["total_tokens"] or 0 for s in spans)
        trace.cost += sum(s["cost"] or 0.0 for s in spans)
        earliest = spans[0]
        root = next((s for s in spans if s["parent_id"] is None), None)
        if trace.root_span_id is None and root is not None:
            trace.root_span_id, trace.root_span_name = root["span_id"], root["name"]
        elif trace.root_span_id is None and (
            trace.start_time is None or earliest["start_time"] < trace.start_time
        ):
            trace.root_span_name = earliest["name"]
        if trace.start_time is None or earliest["start_time"] < trace.start_time:
            trace.start_time = earliest["start_time"]
        latest_end = max(s["end_time"] for s in spans)
        if trace.end_time is None or latest_end > trace.end_time:
            trace.end_time = latest_end
        if root is not None and trace.root_span_id == root["span_id"]:
            trace.latency_ms = root["latency_ms"]
        elif trace.root_span_id is None:
            trace.latency_ms = (trace.end_time - trace.start_time).total_seconds() * 1000.0
        if root is not None and root["session_id"]:
            trace.session_id = root["session_id"]
        elif trace.session_id is None:
            trace.session_id = next((s["session_id"] for s in spans if s["session_id"]), None)
        trace_rows.append([trace.pk, *(getattr(trace, f) for f in _TRACE_ROLLUP_FIELDS)])
    rows_update(Trace, _TRACE_ROLLUP_FIELDS, trace_rows)
    # The hourly roll-ups of the hours the changed traces started in, before and after.
    trace_hours_forget(
        (trace.project_id, start)
        for trace in traces
        if trace.pk in by_trace
        for start in (before[trace.pk][2], trace.start_time)
    )

    # Sessions: add each trace's change; a trace that moved between sessions recomputes both.
    deltas: dict[int, dict[str, Any]] = {}
    recompute: set[int] = set()
    for trace in traces:
        old_session, old_sums, _old_start, _old_end = before[trace.pk]
        if trace.session_id is None:
            continue
        if old_session is not None and old_session != trace.session_id:
            recompute |= {old_session, trace.session_id}
            continue
        delta = deltas.setdefault(
            trace.session_id,
            {"trace_count": 0, "start": None, "end": None, **dict.fromkeys(_SUMMED, 0)},
        )
        delta["trace_count"] += 1 if old_session is None else 0
        for field_name in _SUMMED:
            delta[field_name] += getattr(trace, field_name) - old_sums[field_name]
        if delta["start"] is None or trace.start_time < delta["start"]:
            delta["start"] = trace.start_time
        if delta["end"] is None or trace.end_time > delta["end"]:
            delta["end"] = trace.end_time
    session_rows = []
    locked: list[Session] = []
    for chunk in _chunks(sorted(set(deltas) - recompute)):
        locked.extend(Session.objects.select_for_update().filter(pk__in=chunk).order_by("id"))
    for session in locked:
        delta = deltas[session.pk]
        session.trace_count += delta["trace_count"]
        for field_name in _SUMMED:
            setattr(session, field_name, getattr(session, field_name) + delta[field_name])
        if session.start_time is None or delta["start"] < session.start_time:
            session.start_time = delta["start"]
        if session.end_time is None or delta["end"] > session.end_time:
            session.end_time = delta["end"]
        session_rows.append([session.pk, *(getattr(session, f) for f in _SESSION_ROLLUP_FIELDS)])
    rows_update(Session, _SESSION_ROLLUP_FIELDS, session_rows)
    if recompute:
        sessions_recompute(recompute)


def traces_recompute(trace_pks: Iterable[int]) -> None:
    """Recompute trace rows from their spans; a trace left with no span is deleted."""
    pks = sorted(set(trace_pks))
    if not pks:
        return
    traces_rollup(pks)
    for chunk in _chunks(pks):
        empty = Trace.objects.filter(pk__in=chunk).exclude(
            Exists(Span.objects.filter(trace_id=OuterRef("pk")))
        )
        if empty.exists():
            empty.delete()


def sessions_recompute(session_pks: Iterable[int]) -> None:
    """Recompute session rows from their traces; a session left with no trace is deleted."""
    pks = sorted(set(session_pks))
    if not pks:
        return
    sessions_rollup(pks)
    for chunk in _chunks(pks):
        empty = Session.objects.filter(pk__in=chunk).exclude(
            Exists(Trace.objects.filter(session_id=OuterRef("pk")))
        )
        if empty.exists():
            empty.delete()


@transaction.atomic
def spans_delete(*, span_ids: Sequence[str], project: Project | None = None) -> int:
    """Delete spans for good, with their annotations; unknown ids are ignored.

    Returns how many spans were deleted. Traces and sessions are recomputed (and removed when
    nothing is left in them).
    """
    query = Span.objects.filter(span_id__in=list(span_ids))
    if project is not None:
        query = query.filter(project=project)
    return spans_delete_rows(query)


@transaction.atomic
def spans_delete_identified(*, project: Project, identifiers: Sequence[str]) -> list[str]:
    """Delete the spans of ``project`` that ``identifiers`` name (``span_id``s, or ``id``s as
    the span listing gives them; see ``span_ids_resolve``), with their annotations; unknown
    identifiers are ignored. Returns the ``span_id``s deleted."""
    span_ids = span_ids_resolve(identifiers=identifiers, project=project)
    spans_delete_rows(Span.objects.filter(project=project, span_id__in=span_ids))
    return span_ids


def spans_delete_rows(query: QuerySet[Span]) -> int:
    """Delete the spans of ``query`` (in the caller's transaction), recompute their traces and
    sessions; the number of spans deleted."""
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


@transaction.atomic
def sessions_delete(*, sessions: Sequence[Session]) -> int:
    """Delete sessions for good with their traces, spans and annotations; the number of
    sessions deleted. Spans of other traces that carried the session are deleted too."""
    pks = sorted({session.pk for session in sessions})
    if not pks:
        return 0
    spans_delete_rows(Span.objects.filter(Q(trace__session_id__in=pks) | Q(session_id__in=pks)))
    # Emptied sessions went with their last trace; a session without traces goes here.
    Session.objects.filter(pk__in=pks).delete()
    return len(pks)


__all__ = [
    "DEFAULT_PROJECT",
    "IngestResult",
    "ProjectNameTaken",
    "SpanRecordError",
    "project_create_unique",
    "project_delete",
    "project_update",
    "projects_ensure",
    "sessions_recompute",
    "spans_delete",
    "spans_delete_identified",
    "spans_ingest",
    "traces_recompute",
]
