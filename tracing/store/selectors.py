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
from datetime import UTC, datetime
from typing import Any, Final

from django.db.models import Q, QuerySet

from evalhub.core.paging import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, InvalidCursor, Page
from tracing.models import Project, Span


class Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = Unset()
"""``parent_id=UNSET`` does not filter on the parent; ``parent_id=None`` selects root spans."""


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


def project_list(
    *, name_contains: str | None = None, cursor: str | None = None, limit: int = DEFAULT_PAGE_SIZE
) -> Page[Project]:
    """Projects by id, ``limit`` at a time."""
    query = Project.objects.order_by("id")
    if name_contains:
        query = query.filter(name__icontains=name_contains)
    if cursor:
        (last_id,) = cursor_decode(cursor, "project", 1)
        if not isinstance(last_id, int):
            raise InvalidCursor("cursor is not valid")
        query = query.filter(id__gt=last_id)
    rows = list(query[: limit + 1])
    if len(rows) > limit:
        return Page(rows[:limit], cursor_encode("project", rows[limit - 1].pk))
    return Page(rows, None)


# --- cursors ----------------------------------------------------------------------------------


def cursor_encode(kind: str, *values: Any) -> str:
    raw = json.dumps([kind, *values], separators=(",", ":"), default=_json_default)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot encode {type(value).__name__} in a cursor")


def cursor_decode(cursor: str, kind: str, size: int) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        decoded = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, binascii.Error, UnicodeError) as exc:
        raise InvalidCursor("cursor is not valid") from exc
    if not isinstance(decoded, list) or len(decoded) != size + 1 or decoded[0] != kind:
        raise InvalidCursor("cursor is not valid for this list")
    return decoded[1:]


def cursor_datetime(value: Any) -> datetime:
    if not isinstance(value, str):
        raise InvalidCursor("cursor is not valid")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise InvalidCursor("cursor is not valid") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def keyset_after(field: str, value: Any, last_id: int, *, descending: bool) -> Q:
    """Rows after ``(value, last_id)`` in ``(field, id)`` order; the first condition is a plain
    range on ``field`` so the database seeks into the index rather than scanning from its top."""
    if descending:
        return Q(**{f"{field}__lte": value}) & (
            Q(**{f"{field}__lt": value}) | Q(**{field: value, "id__lt": last_id})
        )
    return Q(**{f"{field}__gte": value}) & (
        Q(**{f"{field}__gt": value}) | Q(**{field: value, "id__gt": last_id})
    )


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
            page = page.filter(keyset_after("start_time", last[0], last[1], descending=True))
        rows = list(page.values(*EXPORT_FIELDS)[:batch_size])
        if not rows:
            return
        yield rows
        if len(rows) < batch_size:
            return
        last = (rows[-1]["start_time"], rows[-1]["id"])


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


__all__ = [
    "DEFAULT_PAGE_SIZE",
    "EXPORT_FIELDS",
    "MAX_PAGE_SIZE",
    "UNSET",
    "InvalidCursor",
    "Page",
    "global_id_pk",
    "project_get",
    "project_list",
    "span_ids_resolve",
    "span_rows_batched",
    "spans_existing",
    "trace_spans",
]
