"""Reads from the trace store: projects, span and trace lists with keyset cursors, exports.

Span lists are ordered newest first, ``(start_time DESC, id DESC)``, which is the order of the
``span_project_newest`` index; a cursor is the ``(start_time, id)`` of the last row returned, so a
page is found by an index range scan whatever its depth, and spans arriving between two pages
neither shift nor repeat rows.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from django.db.models import F, JSONField, Q, QuerySet, Value
from django.db.models.expressions import Expression
from django.db.models.fields.json import KeyTransform, KeyTransformExact

from tracing.models import Project, Span, Trace

DEFAULT_PAGE_SIZE: Final = 100
MAX_PAGE_SIZE: Final = 1000


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = _Unset()
"""``parent_id=UNSET`` does not filter on the parent; ``parent_id=None`` selects root spans."""


class InvalidCursor(ValueError):
    """A cursor that this server did not hand out (or for another ordering)."""


class InvalidAttributeFilter(ValueError):
    """An ``attribute=key:value`` parameter that cannot be read."""


_MAX_PK_DIGITS: Final = 18
"""Longer digit strings are not primary keys (a bigint has 19 digits at most)."""


def global_id_pk(identifier: str, node_type: str) -> int | None:
    """The primary key in a Phoenix relay GlobalID (base64 of ``"<Type>:<pk>"``), if it is one."""
    try:
        decoded = base64.b64decode(identifier, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    kind, _, pk = decoded.partition(":")
    return _pk(pk) if kind == node_type else None


def _pk(text: str) -> int | None:
    if text.isascii() and text.isdigit() and len(text) <= _MAX_PK_DIGITS:
        return int(text)
    return None


# --- projects ---------------------------------------------------------------------------------


def project_get(id_or_name: str) -> Project | None:
    """The project with this numeric id, else with this name."""
    ident = id_or_name.strip()
    if ident.isdigit():
        project = Project.objects.filter(pk=int(ident)).first()
        if project is not None:
            return project
    return Project.objects.filter(name=ident).first()


@dataclass(frozen=True, slots=True)
class Page[T]:
    items: list[T]
    next_cursor: str | None


def project_list(
    *, name_contains: str | None = None, cursor: str | None = None, limit: int = DEFAULT_PAGE_SIZE
) -> Page[Project]:
    """Projects by id, ``limit`` at a time."""
    query = Project.objects.order_by("id")
    if name_contains:
        query = query.filter(name__icontains=name_contains)
    if cursor:
        (last_id,) = _cursor_decode(cursor, "project", 1)
        if not isinstance(last_id, int):
            raise InvalidCursor("cursor is not valid")
        query = query.filter(id__gt=last_id)
    rows = list(query[: limit + 1])
    if len(rows) > limit:
        return Page(rows[:limit], _cursor_encode("project", rows[limit - 1].pk))
    return Page(rows, None)


# --- cursors ----------------------------------------------------------------------------------


def _cursor_encode(kind: str, *values: Any) -> str:
    raw = json.dumps([kind, *values], separators=(",", ":"), default=_json_default)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot encode {type(value).__name__} in a cursor")


def _cursor_decode(cursor: str, kind: str, size: int) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        decoded = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, binascii.Error, UnicodeError) as exc:
        raise InvalidCursor("cursor is not valid") from exc
    if not isinstance(decoded, list) or len(decoded) != size + 1 or decoded[0] != kind:
        raise InvalidCursor("cursor is not valid for this list")
    return decoded[1:]


def _cursor_datetime(value: Any) -> datetime:
    if not isinstance(value, str):
        raise InvalidCursor("cursor is not valid")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise InvalidCursor("cursor is not valid") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _keyset_after(field: str, value: Any, last_id: int, *, descending: bool) -> Q:
    """Rows after ``(value, last_id)`` in ``(field, id)`` order; the first condition is a plain
    range on ``field`` so the database seeks into the index rather than scanning from its top."""
    if descending:
        return Q(**{f"{field}__lte": value}) & (
            Q(**{f"{field}__lt": value}) | Q(**{field: value, "id__lt": last_id})
        )
    return Q(**{f"{field}__gte": value}) & (
        Q(**{f"{field}__gt": value}) | Q(**{field: value, "id__gt": last_id})
    )


# --- spans ------------------------------------------------------------------------------------

# Attribute keys kept in their own columns (see ``tracing.ingest.records.COLUMN_ATTRIBUTES``).
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
    parent_id: str | _Unset | None = UNSET,
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
    """One page of ``span_queryset(project=project, **filters)``, with the trace loaded."""
    query = span_queryset(project=project, **filters)
    if cursor:
        raw_time, last_id = _cursor_decode(cursor, "span", 2)
        if not isinstance(last_id, int):
            raise InvalidCursor("cursor is not valid")
        query = query.filter(
            _keyset_after("start_time", _cursor_datetime(raw_time), last_id, descending=True)
        )
    rows = list(query.select_related("trace")[: limit + 1])
    if len(rows) > limit:
        last = rows[limit - 1]
        return Page(rows[:limit], _cursor_encode("span", last.start_time, last.pk))
    return Page(rows, None)


EXPORT_FIELDS: Final = (
    "id",
    "span_id",
    "trace__trace_id",
    "parent_id",
    "name",
    "span_kind",
    "status_code",
    "status_message",
    "start_time",
    "end_time",
    "latency_ms",
    "attributes",
    "events",
    "input_value",
    "input_mime_type",
    "output_value",
    "output_mime_type",
    "model_name",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cost",
    "session_key",
    "user_id",
    "metadata",
)


def span_rows_batched(
    query: QuerySet[Span], *, batch_size: int = 2000
) -> Iterator[list[dict[str, Any]]]:
    """The rows of a newest-first span query as ``.values(*EXPORT_FIELDS)`` dicts, in keyset
    batches: memory stays bounded by one batch whatever the number of spans."""
    last: tuple[datetime, int] | None = None
    while True:
        page = query
        if last is not None:
            page = page.filter(_keyset_after("start_time", last[0], last[1], descending=True))
        rows = list(page.values(*EXPORT_FIELDS)[:batch_size])
        if not rows:
            return
        yield rows
        if len(rows) < batch_size:
            return
        last = (rows[-1]["start_time"], rows[-1]["id"])


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
        raw_value, last_id = _cursor_decode(cursor, kind, 2)
        if not isinstance(last_id, int):
            raise InvalidCursor("cursor is not valid")
        if sort == "start_time":
            value: Any = _cursor_datetime(raw_value)
        elif isinstance(raw_value, int | float) and not isinstance(raw_value, bool):
            value = float(raw_value)
        else:
            raise InvalidCursor("cursor is not valid")
        query = query.filter(_keyset_after(sort, value, last_id, descending=descending))
    prefix = "-" if descending else ""
    rows = list(query.order_by(f"{prefix}{sort}", f"{prefix}id")[: limit + 1])
    if len(rows) > limit:
        last = rows[limit - 1]
        return Page(rows[:limit], _cursor_encode(kind, getattr(last, sort), last.pk))
    return Page(rows, None)


def trace_spans(trace_pks: Sequence[int]) -> dict[int, list[Span]]:
    """The spans of these traces, by trace pk, each list in start order."""
    spans: dict[int, list[Span]] = {pk: [] for pk in trace_pks}
    for span in (
        Span.objects.filter(trace_id__in=list(trace_pks))
        .order_by("trace_id", "start_time", "id")
        .only(
            "id",
            "trace_id",
            "span_id",
            "parent_id",
            "name",
            "span_kind",
            "status_code",
            "start_time",
            "end_time",
        )
    ):
        spans[span.trace_id].append(span)
    return spans


def span_ids_resolve(*, identifiers: Sequence[str], project: Project | None = None) -> list[str]:
    """The ``span_id``s of the spans (of ``project``) that ``identifiers`` name, in their order,
    once each; unknown identifiers are left out.

    An identifier is a span's OpenTelemetry ``span_id`` or its ``id`` as the span listing gives
    it (the primary key as digits, or a Phoenix GlobalID ``base64("Span:<pk>")``); a ``span_id``
    match wins.
    """
    spans = Span.objects.all() if project is None else Span.objects.filter(project=project)
    wanted = list(dict.fromkeys(str(identifier) for identifier in identifiers))
    by_span_id = set(spans.filter(span_id__in=wanted).values_list("span_id", flat=True))
    pks: dict[str, int] = {}
    for identifier in wanted:
        if identifier not in by_span_id:
            pk = _pk(identifier)
            pk = pk if pk is not None else global_id_pk(identifier, "Span")
            if pk is not None:
                pks[identifier] = pk
    by_pk = dict(spans.filter(pk__in=set(pks.values())).values_list("pk", "span_id"))
    resolved: dict[str, None] = {}
    for identifier in wanted:
        span_id = identifier if identifier in by_span_id else by_pk.get(pks.get(identifier, -1))
        if span_id is not None:
            resolved[span_id] = None
    return list(resolved)


def spans_existing(span_ids: Sequence[str]) -> dict[str, str]:
    """Of these span ids, those already stored, with their trace id."""
    return dict(
        Span.objects.filter(span_id__in=list(span_ids)).values_list("span_id", "trace__trace_id")
    )


def traces_projects(trace_ids: Sequence[str]) -> dict[str, int]:
    """Of these trace ids, those already stored, with their project pk."""
    return dict(
        Trace.objects.filter(trace_id__in=list(trace_ids)).values_list("trace_id", "project_id")
    )


__all__ = [
    "DEFAULT_PAGE_SIZE",
    "EXPORT_FIELDS",
    "MAX_PAGE_SIZE",
    "TRACE_SORTS",
    "UNSET",
    "InvalidAttributeFilter",
    "InvalidCursor",
    "Page",
    "attribute_filter_parse",
    "global_id_pk",
    "project_get",
    "project_list",
    "span_ids_resolve",
    "span_list",
    "span_queryset",
    "span_rows_batched",
    "spans_existing",
    "trace_list",
    "trace_spans",
    "traces_projects",
]
