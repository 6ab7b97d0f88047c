"""Reads for the trace browser's traces / spans / sessions tables (project cards:
``tracing.browser.projects``; the rows behind bulk actions: ``tracing.browser.selection``).

Every table is paged with a keyset cursor on ``(sort value, id)`` in the page's direction, so a
page is an index range (for the default newest-first order) whatever its depth, and rows
arriving while someone pages neither shift nor repeat rows. ``after`` pages forward from the
last row shown, ``before`` back from the first one.

The rows of a page get their evaluation and annotation badges from one query
(``tracing.browser.badges``). Filtering is not done here: the caller passes a span queryset already
narrowed by ``tracing.browser.filters.SpanFilterSet`` (which compiles everything through the one filter
language), and the sessions table keeps the sessions that have a matching span.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final, Literal

from django.db.models import (
    DurationField,
    Exists,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.functions import Coalesce, Substr

from annotations.models import Annotation
from annotations.naming import MACHINE_KINDS
from tracing.browser.badges import badges_attach
from tracing.browser.tabs import Tab
from tracing.models import Project, Session, Span, SpanKind
from tracing.query.lists import results_lead, rows_led
from tracing.store.selectors import (
    InvalidCursor,
    cursor_datetime,
    cursor_decode,
    cursor_encode,
    keyset_after,
)

SORTS: Final = ("start_time", "latency", "tokens", "cost")
PAGE_SIZES: Final = (25, 50, 100, 200)
DEFAULT_PAGE_SIZE: Final = 50
# Traces a page of the Traces tab looks at, at most, when a trace matches by any of its spans:
# a filter that few traces match then costs a bounded scan, and the page continues the search.
SEARCH_WINDOW: Final = 1000
PREVIEW_CHARS: Final = 240
LIVE_MAX_ROWS: Final = 200


# --- quick-filter choices ---------------------------------------------------------------------


def model_names_recent(*, project: Project, sample: int = 500) -> list[str]:
    """Model names of the project's most recent LLM spans (a range of the ``span_project_kind``
    index, not a scan), for the model quick filter's suggestions."""
    recent = (
        Span.objects.filter(project=project, span_kind=SpanKind.LLM)
        .order_by("-start_time")
        .values_list("model_name", flat=True)[:sample]
    )
    return sorted({name for name in recent if name})


def evaluation_names_recent(*, project: Project, sample: int = 2000) -> list[str]:
    """Names of the project's most recent evaluations (LLM and code annotators)."""
    recent = (
        Annotation.objects.filter(project=project)
        .order_by("-created_at")
        .values_list("name", "annotator_kind")[:sample]
    )
    return sorted({name for name, kind in recent if kind in MACHINE_KINDS})


def evaluation_names(*, project: Project) -> list[str]:
    """Every evaluation name of the project (what "has an evaluation" means), sorted.

    Read name by name along the ``(name, label, span)`` index — the next name after the last
    one found, one short index read each — rather than by a DISTINCT over every annotation
    (200,000 of them took 65 ms on a loaded machine; a project has a handful of names)."""
    evaluations = Annotation.objects.filter(project=project, annotator_kind__in=MACHINE_KINDS)
    names: list[str] = []
    while True:
        following = evaluations.filter(name__gt=names[-1]) if names else evaluations
        name = following.order_by("name").values_list("name", flat=True).first()
        if name is None:
            return sorted(names)
        names.append(name)


# --- tables -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Sort:
    """A table order: ``(path, *ties, id)`` in one direction, which is also the keyset cursor.

    Every order of the traces and spans tables is an index range (migration 0004): the spans'
    ``(project, latency_ms | COALESCE(tokens, 0) | COALESCE(cost, 0), id)`` indexes, their
    partial twins for root spans, and for the traces' tokens and cost the trace rows'
    ``(project, total_tokens | cost, id)`` indexes, read in order and joined to their root span.
    That is why those two order by the trace's id before the root span's own (``ties``): the
    index gives ``(value, trace id)``, and a trace with two root spans still pages right. No
    sorted column is NULL (token and cost sorts of spans count a missing value as 0), so the
    cursor's comparisons and the index order agree.
    """

    path: str  # the ORM path (or alias) ordered and compared on
    value_kind: Literal["datetime", "float", "int", "duration"]
    alias: Any = None  # an expression aliased as ``path`` when it is not a column
    ties: tuple[str, ...] = ()  # integer columns ordered on between ``path`` and ``id``


_SPAN_SORTS: Final[dict[str, _Sort]] = {
    "start_time": _Sort("start_time", "datetime"),
    "latency": _Sort("latency_ms", "float"),
    "tokens": _Sort("sort_tokens", "int", Coalesce("total_tokens", 0)),
    "cost": _Sort("sort_cost", "float", Coalesce("cost", Value(0.0))),
}
_TRACE_SORTS: Final[dict[str, _Sort]] = {
    "start_time": _Sort("start_time", "datetime"),
    "latency": _Sort("latency_ms", "float"),
    "tokens": _Sort("trace__total_tokens", "int", ties=("trace_id",)),
    "cost": _Sort("trace__cost", "float", ties=("trace_id",)),
}
_SESSION_SORTS: Final[dict[str, _Sort]] = {
    "start_time": _Sort("start_time", "datetime"),
    "latency": _Sort(
        "sort_duration",
        "duration",
        ExpressionWrapper(F("end_time") - F("start_time"), output_field=DurationField()),
    ),
    "tokens": _Sort("total_tokens", "int"),
    "cost": _Sort("cost", "float"),
}

_SPAN_COLUMNS: Final = (
    "id",
    "trace",
    "session",
    "span_id",
    "parent_id",
    "name",
    "span_kind",
    "status_code",
    "status_message",
    "start_time",
    "latency_ms",
    "model_name",
    "total_tokens",
    "cost",
    "trace__id",
    "trace__trace_id",
    "trace__total_tokens",
    "trace__cost",
    "trace__span_count",
    "trace__error_count",
)


@dataclass(slots=True)
class BrowsePage[T]:
    rows: list[T]
    next_cursor: str | None  # ``after=`` for the next page; None on the last page
    prev_cursor: str | None  # ``before=`` for the previous page; None when it is the first
    has_prev: bool  # there is a previous page (the first page when ``prev_cursor`` is None)
    top_cursor: str | None  # the first row, for polling rows newer than it ("live")
    # When the search window ended the page before it was full: how many rows were looked at,
    # and the sort value of the last one (the next page searches on from there).
    searched: int | None = None
    searched_to: Any = None


def browse_spans(*, project: Project, tab: Tab) -> QuerySet[Span]:
    """The spans a tab starts from, before filters: root spans for traces, all spans else."""
    query = Span.objects.filter(project=project)
    if tab == "traces":
        query = query.filter(parent_id__isnull=True)
    return query.order_by("-start_time", "-id")


def _sorts(tab: Tab) -> dict[str, _Sort]:
    return {"traces": _TRACE_SORTS, "spans": _SPAN_SORTS, "sessions": _SESSION_SORTS}[tab]


def _value_of(row: Any, path: str) -> Any:
    value = row
    for part in path.split("__"):
        value = getattr(value, part)
    return value


def _encode_value(value: Any, kind: str) -> Any:
    if kind == "duration":
        return value // timedelta(microseconds=1) if value is not None else 0
    return value


def _decode_value(raw: Any, kind: str) -> Any:
    if kind == "datetime":
        return cursor_datetime(raw)
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise InvalidCursor("cursor is not valid")
    if kind == "int":
        if not isinstance(raw, int):
            raise InvalidCursor("cursor is not valid")
        return raw
    if kind == "duration":
        return timedelta(microseconds=int(raw))
    return float(raw)


def browse_page(
    *,
    project: Project,
    tab: Tab,
    spans: QuerySet[Span],
    filtering: bool,
    sort: str = "start_time",
    descending: bool = True,
    after: str | None = None,
    before: str | None = None,
    size: int = DEFAULT_PAGE_SIZE,
    window: QuerySet[Span] | None = None,
    window_size: int = SEARCH_WINDOW,
    expression: str = "",
) -> BrowsePage[Any]:
    """One page of a tab. ``spans`` is the tab's filtered span queryset (``browse_spans`` put
    through the filters); ``filtering`` says whether any filter is set, so the sessions table
    reads sessions directly when none is. Raises ``InvalidCursor`` for a cursor not made here.

    ``window``, for the Traces tab when a trace matches by any of its spans: the rows before
    that match (root spans, time range applied). The page then looks at no more than
    ``window_size`` of them past its cursor — an index range — so its cost is bounded however
    few traces match; when the window ends before the page is full, the page says so
    (``searched``) and its cursor continues the search after the window.

    ``expression``: the filter ``spans`` went through, in the filter language. On the Spans
    tab, when it asks for a result on the span, the newest-first pages are read from the
    project's results of that name (``tracing.query.lists.results_lead``, ``rows_led``) rather
    than by walking the spans until a page matches.
    """
    if sort not in SORTS:
        raise ValueError(f"sort must be one of {', '.join(SORTS)}")
    spec = _sorts(tab)[sort]
    kind = f"{tab}:{sort}:{'desc' if descending else 'asc'}"
    query = _table_query(project=project, tab=tab, spans=spans, filtering=filtering, spec=spec)
    keys = (spec.path, *spec.ties, "id")

    def edge_of(direction: bool, values: tuple[Any, ...] | None) -> tuple[Any, ...] | None:
        """The last row of the search window in ``direction`` past ``values``."""
        if window is None:
            return None
        rows = _table_query(project=project, tab=tab, spans=window, filtering=True, spec=spec)
        if values is not None:
            rows = rows.filter(_keyset(keys, values, descending=direction))
        order = _order(keys, descending=direction)
        edge = list(rows.order_by(*order).values_list(*keys)[window_size - 1 : window_size])
        return tuple(edge[0]) if edge else None

    def cursor_at(values: tuple[Any, ...]) -> str:
        return cursor_encode(kind, _encode_value(values[0], spec.value_kind), *values[1:])

    edge: tuple[Any, ...] | None = None
    values: tuple[Any, ...] | None
    if before:
        values = _cursor_values(before, kind, spec)
        edge = edge_of(not descending, values)
        query = query.filter(_keyset(keys, values, descending=not descending))
        if edge is not None:
            query = query.filter(_keyset_through(keys, edge, descending=not descending))
        reverse_order = _order(keys, descending=not descending)
        rows = list(query.order_by(*reverse_order)[: size + 1])
        has_prev = len(rows) > size
        rows = list(reversed(rows[:size]))
        has_next = True
        cut = not has_prev and edge is not None
        has_prev = has_prev or cut
    else:
        values = _cursor_values(after, kind, spec) if after else None
        edge = edge_of(descending, values)
        if values is not None:
            query = query.filter(_keyset(keys, values, descending=descending))
        if edge is not None:
            query = query.filter(_keyset_through(keys, edge, descending=descending))
        led = tab == "spans" and sort == "start_time" and descending
        lead = results_lead(project, expression) if led else None
        if lead is not None:
            after_row = (values[0], values[-1]) if values is not None else None
            rows = rows_led(query, lead, after_row, size + 1)
        else:
            rows = list(query.order_by(*_order(keys, descending=descending))[: size + 1])
        has_next = len(rows) > size
        rows = rows[:size]
        has_prev = bool(after)
        cut = not has_next and edge is not None

    def cursor(row: Any) -> str:
        return cursor_at(
            (_value_of(row, spec.path), *(_value_of(row, tie) for tie in spec.ties), row.pk)
        )

    next_cursor = cursor(rows[-1]) if rows and has_next else None
    prev_cursor = cursor(rows[0]) if rows and has_prev else None
    if cut and edge is not None:
        # The window ended the page: the search goes on after its last row.
        if before:
            prev_cursor = cursor_at(edge)
        else:
            next_cursor = cursor_at(edge)
    badges_attach(rows, tab=tab)
    return BrowsePage(
        rows=rows,
        next_cursor=next_cursor,
        prev_cursor=prev_cursor,
        has_prev=has_prev,
        top_cursor=cursor(rows[0]) if rows else None,
        searched=window_size if cut else None,
        searched_to=edge[0] if cut and edge is not None else None,
    )


def browse_newer(
    *,
    project: Project,
    tab: Tab,
    spans: QuerySet[Span],
    filtering: bool,
    newer_than: str,
) -> BrowsePage[Any]:
    """The rows that start after the row ``newer_than`` (a ``top_cursor`` of the newest-first
    order), newest first, at most ``LIVE_MAX_ROWS``: what "live" adds above the table."""
    spec = _sorts(tab)["start_time"]
    kind = f"{tab}:start_time:desc"
    value, last_id = _cursor_values(newer_than, kind, spec)
    query = _table_query(project=project, tab=tab, spans=spans, filtering=filtering, spec=spec)
    rows = list(
        query.filter(keyset_after(spec.path, value, last_id, descending=False)).order_by(
            spec.path, "id"
        )[:LIVE_MAX_ROWS]
    )
    rows.reverse()
    badges_attach(rows, tab=tab)
    top = (
        cursor_encode(kind, _encode_value(_value_of(rows[0], spec.path), "datetime"), rows[0].pk)
        if rows
        else newer_than
    )
    return BrowsePage(rows=rows, next_cursor=None, prev_cursor=None, has_prev=False, top_cursor=top)


def _cursor_values(cursor: str, kind: str, spec: _Sort) -> tuple[Any, ...]:
    """``(value, *ties, id)`` of a cursor made for ``kind``."""
    raw_value, *integers = cursor_decode(cursor, kind, 2 + len(spec.ties))
    for number in integers:
        if isinstance(number, bool) or not isinstance(number, int):
            raise InvalidCursor("cursor is not valid")
    return (_decode_value(raw_value, spec.value_kind), *integers)


def _order(keys: Sequence[str], *, descending: bool) -> list[str]:
    return [f"-{key}" if descending else key for key in keys]


def _keyset(keys: Sequence[str], values: Sequence[Any], *, descending: bool) -> Q:
    """Rows after ``values`` in the order of ``keys`` (lexicographic, one direction). The first
    condition is a plain range on the first key, so the database seeks into the index."""
    if len(keys) == 2:
        return keyset_after(keys[0], values[0], values[1], descending=descending)
    beyond = "lt" if descending else "gt"
    after = Q()
    for position, key in enumerate(keys):
        step = Q(**{f"{key}__{beyond}": values[position]})
        for equal_key, equal_value in zip(keys[:position], values[:position], strict=True):
            step &= Q(**{equal_key: equal_value})
        after |= step
    return Q(**{f"{keys[0]}__{beyond}e": values[0]}) & after


def _keyset_through(keys: Sequence[str], values: Sequence[Any], *, descending: bool) -> Q:
    """Rows up to and including ``values`` in the order of ``keys``: the end of a search
    window (with a plain range on the first key, so the scan stays an index range)."""
    bound = "gte" if descending else "lte"
    return Q(**{f"{keys[0]}__{bound}": values[0]}) & ~_keyset(keys, values, descending=descending)


def project_has_rows(*, project: Project, tab: Tab) -> bool:
    """Whether the tab would list anything with no filter and no time range: an empty page
    says "nothing matches" then, and how to send the first trace (or session) otherwise."""
    if tab == "sessions":
        return Session.objects.filter(project=project, start_time__isnull=False).exists()
    return Span.objects.filter(project=project).exists()


def _table_query(
    *, project: Project, tab: Tab, spans: QuerySet[Span], filtering: bool, spec: _Sort
) -> QuerySet[Any]:
    if tab == "sessions":
        sessions = Session.objects.filter(project=project, start_time__isnull=False)
        if filtering:
            sessions = sessions.filter(Exists(spans.filter(session_id=OuterRef("pk"))))
        roots = Span.objects.filter(session_id=OuterRef("pk"), parent_id__isnull=True)
        sessions = sessions.annotate(
            first_input=Subquery(
                roots.order_by("start_time", "id").values(
                    preview=Substr("input_value", 1, PREVIEW_CHARS)
                )[:1]
            ),
            last_output=Subquery(
                roots.order_by("-start_time", "-id").values(
                    preview=Substr("output_value", 1, PREVIEW_CHARS)
                )[:1]
            ),
            duration=ExpressionWrapper(
                F("end_time") - F("start_time"), output_field=DurationField()
            ),
        )
        if spec.alias is not None:
            sessions = sessions.annotate(**{spec.path: spec.alias})
        return sessions
    query = (
        spans.select_related("trace")
        .only(*_SPAN_COLUMNS)
        .annotate(
            input_preview=Substr("input_value", 1, PREVIEW_CHARS),
            output_preview=Substr("output_value", 1, PREVIEW_CHARS),
        )
    )
    if spec.alias is not None:
        query = query.annotate(**{spec.path: spec.alias})
    if spec.path.startswith("trace__"):
        # Always true (a span and its trace share the project); said so the planner can read
        # the trace rows' (project, value, id) index in order.
        query = query.filter(trace__project=project)
    return query
