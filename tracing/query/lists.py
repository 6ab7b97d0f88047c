"""Span and trace lists read through the filter language, paged by cursor: the /v1 API, labeling queues, datasets, the playground's span picker."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final

from django.db.models import F, JSONField, Q, QuerySet, Value
from django.db.models.expressions import Expression
from django.db.models.fields.json import KeyTransform, KeyTransformExact

from annotations.models import Annotation
from tracing.models import Project, Span, Trace
from tracing.store.selectors import (
    DEFAULT_PAGE_SIZE,
    UNSET,
    InvalidCursor,
    Page,
    Unset,
    cursor_datetime,
    cursor_decode,
    cursor_encode,
    keyset_after,
)


class InvalidAttributeFilter(ValueError):
    """An ``attribute=key:value`` parameter that cannot be read."""


# --- spans ------------------------------------------------------------------------------------

# Attribute keys kept in their own columns (see ``tracing.store.records.COLUMN_ATTRIBUTES``).
_COLUMN_KEYS: Final = {
    "input.value": "input_value",
    "input.mime_type": "input_mime_type",
    "output.value": "output_value",
    "output.mime_type": "output_mime_type",
}


def attribute_filter_parse(raw: str) -> tuple[str, Any]:
    """``"llm.model_name:gpt-4o"`` → ``("llm.model_name", "gpt-4o")``.

    The value is typed the way the Phoenix client sends it: ``5`` and ``0.5`` are numbers,
    ``true``/``false`` booleans, ``"5"`` (JSON-quoted) the string ``5``; anything else is a string.
    """
    key, sep, text = raw.partition(":")
    key = key.strip()
    if not sep or not key:
        raise InvalidAttributeFilter(f"attribute {raw!r} is not of the form key:value")
    if any(part == "" for part in key.split(".")):
        raise InvalidAttributeFilter(f"attribute key {key!r} has an empty segment")
    try:
        value = json.loads(text)
    except ValueError:
        return key, text
    if isinstance(value, str | int | float | bool):
        return key, value
    return key, text


def _attribute_condition(key: str, value: Any) -> Q | Expression:
    if key in _COLUMN_KEYS:
        return Q(**{_COLUMN_KEYS[key]: value if isinstance(value, str) else json.dumps(value)})
    parts = key.split(".")
    if parts[0] == "metadata" and len(parts) > 1:
        column, parts = "metadata", parts[1:]
    else:
        column = "attributes"
    # Keys are passed as KeyTransform arguments, never spliced into a lookup string, so a key
    # such as ``tag.contains`` reads the key "contains" and never becomes a lookup.
    lhs: Any = F(column)
    for part in parts:
        lhs = KeyTransform(part, lhs)
    # The value is compared as JSON, so 5 and "5" differ (on SQLite, true also equals "true").
    return KeyTransformExact(lhs, Value(value, output_field=JSONField()))


def span_queryset(
    *,
    project: Project,
    filter_expr: str | None = None,
    start_time: datetime | None = None,
    end_time: datetime | None = None,
    trace_ids: Sequence[str] | None = None,
    span_ids: Sequence[str] | None = None,
    parent_id: str | Unset | None = UNSET,
    names: Sequence[str] | None = None,
    span_kinds: Sequence[str] | None = None,
    status_codes: Sequence[str] | None = None,
    attributes: Sequence[tuple[str, Any]] | None = None,
) -> QuerySet[Span]:
    """A project's spans matching every condition given, newest first.

    ``start_time`` is inclusive and ``end_time`` exclusive. ``filter_expr`` is the filter
    language (``tracing.query``); it raises ``FilterError`` when it cannot be read.
    """
    query = Span.objects.filter(project=project)
    if filter_expr and filter_expr.strip():
        from tracing.query import compile_filter

        query = query.filter(compile_filter(filter_expr))
    if start_time is not None:
        query = query.filter(start_time__gte=start_time)
    if end_time is not None:
        query = query.filter(start_time__lt=end_time)
    if trace_ids:
        query = query.filter(trace__trace_id__in=list(trace_ids))
    if span_ids:
        query = query.filter(span_id__in=list(span_ids))
    if parent_id is None:
        query = query.filter(parent_id__isnull=True)
    elif isinstance(parent_id, str):
        query = query.filter(parent_id=parent_id)
    if names:
        query = query.filter(name__in=list(names))
    if span_kinds:
        query = query.filter(span_kind__in=[kind.upper() for kind in span_kinds])
    if status_codes:
        query = query.filter(status_code__in=[code.upper() for code in status_codes])
    for key, value in attributes or ():
        query = query.filter(_attribute_condition(key, value))
    return query.order_by("-start_time", "-id")


def span_list(
    *,
    project: Project,
    cursor: str | None = None,
    limit: int = DEFAULT_PAGE_SIZE,
    **filters: Any,
) -> Page[Span]:
    """One page of ``span_queryset(project=project, **filters)``, with the trace loaded.

    A filter that asks for a result on the span (``eval.X.label = 'y' and …``) is read from the
    project's results of that name, newest span first (``rows_led``): a rare label costs the
    results that carry it, not a walk over every span until fifty match. The trace browser's
    Spans tab reads its newest-first pages the same way (``tracing.browser.selectors``).
    """
    query = span_queryset(project=project, **filters)
    after: tuple[datetime, int] | None = None
    if cursor:
        raw_time, last_id = cursor_decode(cursor, "span", 2)
        if not isinstance(last_id, int):
            raise InvalidCursor("cursor is not valid")
        after = (cursor_datetime(raw_time), last_id)
        query = query.filter(keyset_after("start_time", after[0], last_id, descending=True))
    lead = results_lead(project, filters.get("filter_expr"))
    if lead is not None:
        rows = rows_led(query, lead, after, limit + 1)
    else:
        rows = list(query.select_related("trace")[: limit + 1])
    if len(rows) > limit:
        last = rows[limit - 1]
        return Page(rows[:limit], cursor_encode("span", last.start_time, last.pk))
    return Page(rows, None)


_LEAD_BATCH_MAX: Final = 4096


def results_lead(project: Project, filter_expr: str | None) -> QuerySet[Annotation] | None:
    """The project's results a page can be read from (newest span first), or None when the
    filter asks for none or when a result of that name has no span start to order by (a
    trace's or session's result, which a root span stands for, or one written before the
    start was kept): then every span is read as before."""
    if not filter_expr or not filter_expr.strip():
        return None
    from tracing.query.compiler import result_lead

    lead = result_lead(filter_expr)
    if lead is None:
        return None
    named = Annotation.objects.filter(project=project, name=lead.name)
    if named.filter(span_start_time__isnull=True).exists():
        return None
    return lead.results.filter(project=project, span__isnull=False, span_start_time__isnull=False)


def rows_led(
    query: QuerySet[Span],
    results: QuerySet[Annotation],
    after: tuple[datetime, int] | None,
    wanted: int,
) -> list[Span]:
    """The first ``wanted`` rows of ``query`` (newest first) among the spans that carry one of
    ``results``, read in batches of results in the same order (their span's start, then the
    span's id): once a batch leaves ``wanted`` rows found, no later result can come before
    them."""
    found: dict[int, Span] = {}
    bound = after
    size = max(wanted, 64)
    while True:
        batch = results
        if bound is not None:
            moment, last_id = bound
            batch = batch.filter(span_start_time__lte=moment).filter(
                Q(span_start_time__lt=moment) | Q(span_start_time=moment, span_id__lt=last_id)
            )
        keys = list(
            batch.order_by("-span_start_time", "-span_id").values_list(
                "span_start_time", "span_id"
            )[:size]
        )
        if not keys:
            break
        # The batch's time range lets PostgreSQL read only the partitions it falls in.
        spans = query.filter(
            pk__in={span_id for _, span_id in keys},
            start_time__gte=keys[-1][0],
            start_time__lte=keys[0][0],
        ).select_related("trace")
        for span in spans:
            found[span.pk] = span
        if len(found) >= wanted or len(keys) < size:
            break
        last_time, last_span = keys[-1]
        assert last_time is not None  # ``results_lead`` reads only results with a span start
        bound = (last_time, last_span)
        size = min(size * 4, _LEAD_BATCH_MAX)
    rows = sorted(found.values(), key=lambda span: (span.start_time, span.pk), reverse=True)
    return rows[:wanted]


# --- traces -----------------------------------------------------------------------------------

TRACE_SORTS: Final = ("start_time", "latency_ms")


def trace_list(
    *,
    project: Project,
    start_time: datetime | None = None,
    end_time: datetime | None = None,
    sort: str = "start_time",
    order: str = "desc",
    session_ids: Sequence[str] | None = None,
    error: bool | None = None,
    min_latency_ms: float | None = None,
    max_latency_ms: float | None = None,
    filter_expr: str | None = None,
    root_spans_only: bool = False,
    cursor: str | None = None,
    limit: int = DEFAULT_PAGE_SIZE,
) -> Page[Trace]:
    """One page of a project's traces, ordered by ``sort`` then id in direction ``order``.

    ``filter_expr`` (the filter language) keeps the traces with a span that matches it — with
    ``root_spans_only``, whose root span matches; it raises ``FilterError`` when it cannot be
    read."""
    if sort not in TRACE_SORTS:
        raise ValueError(f"sort must be one of {', '.join(TRACE_SORTS)}")
    if order not in ("asc", "desc"):
        raise ValueError("order must be asc or desc")
    descending = order == "desc"
    query = Trace.objects.select_related("session").filter(
        project=project, start_time__isnull=False
    )
    if sort == "latency_ms":
        query = query.filter(latency_ms__isnull=False)
    if start_time is not None:
        query = query.filter(start_time__gte=start_time)
    if end_time is not None:
        query = query.filter(start_time__lt=end_time)
    if session_ids:
        query = query.filter(session__session_id__in=list(session_ids))
    if error is True:
        query = query.filter(error_count__gt=0)
    elif error is False:
        query = query.filter(error_count=0)
    if min_latency_ms is not None:
        query = query.filter(latency_ms__gte=min_latency_ms)
    if max_latency_ms is not None:
        query = query.filter(latency_ms__lte=max_latency_ms)
    if filter_expr and filter_expr.strip():
        from tracing.query import compile_filter, trace_matches

        condition = compile_filter(filter_expr) & Q(project=project)
        query = query.filter(trace_matches(condition, trace="pk", root_only=root_spans_only))
    kind = f"trace:{sort}:{order}"
    if cursor:
        raw_value, last_id = cursor_decode(cursor, kind, 2)
        if not isinstance(last_id, int):
            raise InvalidCursor("cursor is not valid")
        if sort == "start_time":
            value: Any = cursor_datetime(raw_value)
        elif isinstance(raw_value, int | float) and not isinstance(raw_value, bool):
            value = float(raw_value)
        else:
            raise InvalidCursor("cursor is not valid")
        query = query.filter(keyset_after(sort, value, last_id, descending=descending))
    prefix = "-" if descending else ""
    rows = list(query.order_by(f"{prefix}{sort}", f"{prefix}id")[: limit + 1])
    if len(rows) > limit:
        last = rows[limit - 1]
        return Page(rows[:limit], cursor_encode(kind, getattr(last, sort), last.pk))
    return Page(rows, None)
