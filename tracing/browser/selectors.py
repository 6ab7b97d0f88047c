"""Reads for the trace browser pages: project cards, and the traces / spans / sessions tables.

Every table is paged with a keyset cursor on ``(sort value, id)`` in the page's direction, so a
page is an index range (for the default newest-first order) whatever its depth, and rows
arriving while someone pages neither shift nor repeat rows. ``after`` pages forward from the
last row shown, ``before`` back from the first one.

The rows of a page get their evaluation and annotation badges from one query
(``badges_attach``). Filtering is not done here: the caller passes a span queryset already
narrowed by ``tracing.browser.filters.SpanFilterSet`` (which compiles everything through the one filter
language), and the sessions table keeps the sessions that have a matching span.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final, Literal

from django.db import connection
from django.db.models import (
    Aggregate,
    Count,
    DurationField,
    Exists,
    ExpressionWrapper,
    F,
    FloatField,
    Max,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce, Substr

from annotations.models import Annotation, AnnotatorKind, TargetKind
from tracing.models import Project, Session, Span, SpanKind, Trace
from tracing.store.selectors import (
    InvalidCursor,
    cursor_datetime,
    cursor_decode,
    cursor_encode,
    keyset_after,
)

Tab = Literal["traces", "spans", "sessions"]
TABS: Final[tuple[Tab, ...]] = ("traces", "spans", "sessions")
SORTS: Final = ("start_time", "latency", "tokens", "cost")
PAGE_SIZES: Final = (25, 50, 100, 200)
DEFAULT_PAGE_SIZE: Final = 50
# Traces a page of the Traces tab looks at, at most, when a trace matches by any of its spans:
# a filter that few traces match then costs a bounded scan, and the page continues the search.
SEARCH_WINDOW: Final = 1000
PREVIEW_CHARS: Final = 240
LIVE_MAX_ROWS: Final = 200
EVALUATOR_KINDS: Final = (AnnotatorKind.LLM, AnnotatorKind.CODE)


# --- percentiles ------------------------------------------------------------------------------


class PercentileCont(Aggregate):
    """``percentile_cont(fraction) WITHIN GROUP (ORDER BY expression)`` (PostgreSQL): the
    continuous percentile, interpolated between the two nearest values."""

    function = "percentile_cont"
    name = "PercentileCont"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression: Any, fraction: float, **extra: Any) -> None:
        fraction = float(fraction)
        if not 0.0 <= fraction <= 1.0:
            raise ValueError("fraction must be between 0 and 1")
        super().__init__(expression, fraction=repr(fraction), **extra)


def percentile_cont(values: QuerySet[Any], column: str, fraction: float) -> float | None:
    """The same percentile as ``PercentileCont`` for databases without it: the two values that
    bracket rank ``(n - 1) * fraction`` are read with ORDER BY … LIMIT/OFFSET, then interpolated.
    Rows where ``column`` is NULL are ignored, as ``percentile_cont`` does."""
    present = values.filter(**{f"{column}__isnull": False}).order_by(column)
    count = present.count()
    if count == 0:
        return None
    rank = (count - 1) * fraction
    low = int(rank)
    bracket = list(present.values_list(column, flat=True)[low : low + 2])
    if len(bracket) == 1 or rank == low:
        return float(bracket[0])
    return float(bracket[0]) + (float(bracket[1]) - float(bracket[0])) * (rank - low)


# --- project cards ----------------------------------------------------------------------------


@dataclass(slots=True)
class LabelCount:
    label: str
    count: int
    share: float  # 0..100 of this evaluation's results


@dataclass(slots=True)
class EvaluationMix:
    name: str
    total: int
    labels: list[LabelCount]


@dataclass(slots=True)
class ProjectCard:
    project: Project
    traces: int = 0
    spans: int = 0
    errors: int = 0
    latency_p50_ms: float | None = None
    latency_p99_ms: float | None = None
    tokens: int = 0
    cost: float = 0.0
    evaluations: list[EvaluationMix] = field(default_factory=list)

    @property
    def error_rate(self) -> float | None:
        """Share of traces with an error span, in percent; None without traces."""
        return 100.0 * self.errors / self.traces if self.traces else None


def project_cards(*, start: datetime | None, end: datetime | None) -> list[ProjectCard]:
    """One card per project with the stats of its traces that started in ``[start, end)``.

    Latency percentiles are of trace latency, computed in the database (``percentile_cont`` on
    PostgreSQL, ordered reads elsewhere). The label mix counts evaluations (LLM and code
    annotators) on the spans and traces of that window.
    """
    cards = {project.pk: ProjectCard(project) for project in Project.objects.order_by("name")}
    if not cards:
        return []
    traces = Trace.objects.filter(start_time__isnull=False)
    if start is not None:
        traces = traces.filter(start_time__gte=start)
    if end is not None:
        traces = traces.filter(start_time__lt=end)
    aggregates: dict[str, Any] = {
        "n": Count("id"),
        "spans": Coalesce(Sum("span_count"), 0),
        "errors": Count("id", filter=Q(error_count__gt=0)),
        "tokens": Coalesce(Sum("total_tokens"), 0),
        "cost": Coalesce(Sum("cost"), 0.0),
    }
    in_database = connection.vendor == "postgresql"
    if in_database:
        aggregates["p50"] = PercentileCont("latency_ms", 0.5)
        aggregates["p99"] = PercentileCont("latency_ms", 0.99)
    for row in traces.values("project_id").annotate(**aggregates).order_by():
        card = cards[row["project_id"]]
        card.traces, card.spans, card.errors = row["n"], row["spans"], row["errors"]
        card.tokens, card.cost = row["tokens"], row["cost"]
        if in_database:
            card.latency_p50_ms, card.latency_p99_ms = row["p50"], row["p99"]
        elif card.traces:
            mine = traces.filter(project_id=row["project_id"])
            card.latency_p50_ms = percentile_cont(mine, "latency_ms", 0.5)
            card.latency_p99_ms = percentile_cont(mine, "latency_ms", 0.99)
    for project_id, mixes in _label_mix(project_ids=list(cards), start=start, end=end).items():
        cards[project_id].evaluations = mixes
    return list(cards.values())


def _label_mix(
    *, project_ids: Sequence[int], start: datetime | None, end: datetime | None
) -> dict[int, list[EvaluationMix]]:
    counts: dict[tuple[int, str, str | None], int] = {}
    evaluations = Annotation.objects.filter(annotator_kind__in=EVALUATOR_KINDS)
    for project_id in project_ids:
        mine = evaluations.filter(project_id=project_id)
        if _window_covers(project_id, start=start, end=end):
            # Every span and trace of the project started in the window: count its evaluations
            # without reading a span (at a million spans the join was most of the page's time).
            grouped = [mine.filter(target_kind__in=(TargetKind.SPAN, TargetKind.TRACE))]
        else:
            # One grouped query per target kind: an OR across two outer joins would keep the
            # database from joining either side efficiently. The target's project is named so
            # the window is a range of its (project, start_time) index.
            grouped = []
            for target, kind in (("span", TargetKind.SPAN), ("trace", TargetKind.TRACE)):
                window = Q(target_kind=kind, **{f"{target}__project_id": project_id})
                if start is not None:
                    window &= Q(**{f"{target}__start_time__gte": start})
                if end is not None:
                    window &= Q(**{f"{target}__start_time__lt": end})
                grouped.append(mine.filter(window))
        for query in grouped:
            rows = query.values_list("name", "label").annotate(n=Count("id")).order_by()
            for name, label, n in rows:
                key = (project_id, name, label)
                counts[key] = counts.get(key, 0) + n
    mixes: dict[int, dict[str, EvaluationMix]] = {}
    for (project_id, name, label), n in sorted(
        counts.items(), key=lambda item: (item[0][0], item[0][1], -item[1], item[0][2] or "")
    ):
        mix = mixes.setdefault(project_id, {}).setdefault(name, EvaluationMix(name, 0, []))
        mix.total += n
        mix.labels.append(LabelCount(label or "(no label)", n, 0.0))
    for by_name in mixes.values():
        for mix in by_name.values():
            for label_count in mix.labels:
                label_count.share = round(100.0 * label_count.count / mix.total, 1)
    return {project_id: list(by_name.values()) for project_id, by_name in mixes.items()}


def _window_covers(project_id: int, *, start: datetime | None, end: datetime | None) -> bool:
    """Whether every span and trace of the project started in ``[start, end)``: the ends of
    its ``(project, start_time)`` indexes, a few rows read."""
    if start is None and end is None:
        return not Trace.objects.filter(project_id=project_id, start_time__isnull=True).exists()
    spans = Span.objects.filter(project_id=project_id).aggregate(
        first=Min("start_time"), last=Max("start_time")
    )
    traces = Trace.objects.filter(project_id=project_id).aggregate(
        first=Min("start_time"), last=Max("start_time")
    )
    if Trace.objects.filter(project_id=project_id, start_time__isnull=True).exists():
        return False
    for first, last in ((spans["first"], spans["last"]), (traces["first"], traces["last"])):
        if first is None:
            continue  # none of them
        if (start is not None and first < start) or (end is not None and last >= end):
            return False
    return True


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
    return sorted({name for name, kind in recent if kind in EVALUATOR_KINDS})


def evaluation_names(*, project: Project) -> list[str]:
    """Every evaluation name of the project (what "has an evaluation" means), sorted.

    Read name by name along the ``(name, label, span)`` index — the next name after the last
    one found, one short index read each — rather than by a DISTINCT over every annotation
    (200,000 of them took 65 ms on a loaded machine; a project has a handful of names)."""
    evaluations = Annotation.objects.filter(project=project, annotator_kind__in=EVALUATOR_KINDS)
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
class Badge:
    name: str
    text: str
    tone: str  # "ok", "error" or "" (CSS class)
    explanation: str
    count: int = 1  # equal results on the row's spans (a trace's), shown once


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
) -> BrowsePage[Any]:
    """One page of a tab. ``spans`` is the tab's filtered span queryset (``browse_spans`` put
    through the filters); ``filtering`` says whether any filter is set, so the sessions table
    reads sessions directly when none is. Raises ``InvalidCursor`` for a cursor not made here.

    ``window``, for the Traces tab when a trace matches by any of its spans: the rows before
    that match (root spans, time range applied). The page then looks at no more than
    ``window_size`` of them past its cursor — an index range — so its cost is bounded however
    few traces match; when the window ends before the page is full, the page says so
    (``searched``) and its cursor continues the search after the window.
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


_BADGE_FIELDS: Final = (
    "span_id",
    "span__trace_id",
    "trace_id",
    "session_id",
    "name",
    "label",
    "score",
    "explanation",
    "annotator_kind",
)


def badges_attach(rows: Sequence[Any], *, tab: Tab) -> None:
    """Give each row ``eval_badges`` and ``note_badges`` (lists of ``Badge``) from one query.

    Spans get the annotations on them; a trace row (its root span) those of the whole trace —
    on any of its spans and on the trace itself; a session row those on the session.
    Evaluations are by LLM and code annotators, annotations by people. Equal badges (same
    name and result) are shown once with a count.
    """
    for row in rows:
        row.eval_badges, row.note_badges = [], []
    if not rows:
        return
    owners: dict[tuple[str, int], list[Any]] = {}
    if tab == "sessions":
        for row in rows:
            owners.setdefault(("session", row.pk), []).append(row)
        items = (
            Annotation.objects.filter(session_id__in=[row.pk for row in rows])
            .order_by("name", "id")
            .values(*_BADGE_FIELDS)
        )
    elif tab == "traces":
        for row in rows:
            owners.setdefault(("trace", row.trace_id), []).append(row)
        traces = sorted({row.trace_id for row in rows})
        # Two index-served halves in one statement: the annotations on the traces' spans (by
        # the spans' (trace, start_time) index) and those on the traces themselves.
        on_spans = Annotation.objects.filter(span__in=Span.objects.filter(trace_id__in=traces))
        on_traces = Annotation.objects.filter(trace_id__in=traces)
        items = (
            on_spans.values(*_BADGE_FIELDS, "id")
            .union(on_traces.values(*_BADGE_FIELDS, "id"), all=True)
            .order_by("name", "id")
        )
    else:
        for row in rows:
            owners.setdefault(("span", row.pk), []).append(row)
        items = (
            Annotation.objects.filter(span_id__in=[row.pk for row in rows])
            .order_by("name", "id")
            .values(*_BADGE_FIELDS)
        )
    found: dict[int, dict[tuple[bool, str, str, str], Badge]] = {}
    for item in items:
        if tab == "traces":
            key = ("trace", item["span__trace_id"] or item["trace_id"])
        elif tab == "sessions":
            key = ("session", item["session_id"])
        else:
            key = ("span", item["span_id"])
        badge = _badge(item)
        machine = item["annotator_kind"] in EVALUATOR_KINDS
        for owner in owners.get(key, ()):
            mine = found.setdefault(id(owner), {})
            same = mine.get((machine, badge.name, badge.text, badge.tone))
            if same is not None:
                same.count += 1
                continue
            badge = Badge(badge.name, badge.text, badge.tone, badge.explanation)
            mine[(machine, badge.name, badge.text, badge.tone)] = badge
            (owner.eval_badges if machine else owner.note_badges).append(badge)
    for row in rows:
        row.eval_badges.sort(key=lambda badge: (badge.name, -badge.count, badge.text))
        row.note_badges.sort(key=lambda badge: (badge.name, -badge.count, badge.text))


_GOOD_LABELS: Final = {"correct", "factual", "relevant", "pass", "passed", "good", "yes", "true"}
_BAD_LABELS: Final = {
    "incorrect",
    "hallucinated",
    "unrelated",
    "irrelevant",
    "fail",
    "failed",
    "bad",
    "no",
    "false",
    "toxic",
}


def _badge(item: dict[str, Any]) -> Badge:
    label, score = item["label"], item["score"]
    if label:
        text = label
    elif score is not None:
        text = f"{score:g}"
    else:
        text = "—"
    tone = ""
    if label and label.lower() in _GOOD_LABELS:
        tone = "ok"
    elif label and label.lower() in _BAD_LABELS:
        tone = "error"
    elif not label and score is not None:
        tone = "ok" if score >= 0.5 else "error"
    return Badge(item["name"], text, tone, item["explanation"] or "")


# --- bulk actions -----------------------------------------------------------------------------


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


__all__ = [
    "DEFAULT_PAGE_SIZE",
    "PAGE_SIZES",
    "SEARCH_WINDOW",
    "SORTS",
    "TABS",
    "Badge",
    "BrowsePage",
    "EvaluationMix",
    "LabelCount",
    "PercentileCont",
    "ProjectCard",
    "ResultSize",
    "Tab",
    "badges_attach",
    "browse_newer",
    "browse_page",
    "browse_spans",
    "evaluation_names",
    "evaluation_names_recent",
    "model_names_recent",
    "percentile_cont",
    "project_cards",
    "result_size",
    "result_spans",
    "result_units",
    "selection_spans",
    "span_ids_of",
    "unit_spans",
]
