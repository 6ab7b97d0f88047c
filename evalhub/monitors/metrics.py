"""What a monitor measures over a window, computed by the database: one grouped aggregate per
window (and per segment), over the spans the monitor's filter selects (the one filter language,
``tracing.query``) and the evaluation or annotation results on them.

A result is placed in time by what it evaluates: a span's result by the span's start, a trace's
by its root span's start. The join of a window's spans to their span results is bounded by the
window's lowest and highest span id (``span_id_bounds``): span ids follow ingestion, so the
results of a window lie in a narrow range of the annotations' ``span_id`` index and the join
reads the window's results rather than every result of that name in the project (a 1-day
window at 200,000 evaluations: ~45 ms instead of ~180 ms). The bounds only ever widen the range
a result may lie in, so a span ingested late widens it and costs time, never a result. Latency percentiles are ``percentile_cont`` on PostgreSQL; SQLite
(the embedded mode) has no such aggregate, and the values of the window are read instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from django.db import connection
from django.db.models import (
    Aggregate,
    Count,
    Expression,
    F,
    FloatField,
    Max,
    Min,
    Q,
    QuerySet,
    Sum,
)
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.db.models.functions import Cast, Coalesce

from annotations.models import AnnotatorKind
from tracing.models import Project, Span, StatusCode
from tracing.query import FilterError
from tracing.query.fields import ColumnTarget, JSONTarget, resolve
from tracing.query.parser import (
    And,
    Arithmetic,
    Calculation,
    Comparison,
    FieldRef,
    Not,
    Or,
    parse,
)

RATE_METRICS: Final = frozenset({"eval_label_rate", "annotation_label_rate", "error_rate"})
MEAN_METRICS: Final = frozenset({"eval_mean_score", "annotation_mean_score"})
RESULT_METRICS: Final = frozenset(
    {"eval_label_rate", "eval_mean_score", "annotation_label_rate", "annotation_mean_score"}
)
PERCENTILES: Final = {"latency_p50": 0.5, "latency_p95": 0.95, "latency_p99": 0.99}
SUM_METRICS: Final = frozenset({"tokens", "cost", "span_count"})
NO_SEGMENT: Final = ""
NULL_SEGMENT: Final = "(none)"


@dataclass(frozen=True, slots=True)
class WindowStats:
    """A metric over one window (and segment): ``value``, the number of results (``samples``)
    and what the tests need — ``hits`` for rates, ``variance`` for means."""

    value: float | None
    samples: int
    hits: int = 0
    variance: float = 0.0


class PercentileCont(Aggregate):
    """PostgreSQL's ``percentile_cont(<fraction>) WITHIN GROUP (ORDER BY <expr>)``; the
    fraction is one of ``PERCENTILES`` (never user text)."""

    function = "percentile_cont"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression: Any, fraction: float, **extra: Any) -> None:
        if fraction not in PERCENTILES.values():
            raise ValueError("unsupported percentile")
        super().__init__(expression, fraction=repr(float(fraction)), **extra)


def segment_expression(field: str) -> Expression | F:
    """The ORM expression of a filter-language field to group spans by (``model_name``,
    ``metadata.tier``, ``attributes.llm.prompt_template.version``). Raises ``FilterError``
    for a field that is unknown or holds no single value per span."""
    node = parse(f"{field} IS NOT NULL")
    if not isinstance(node, Comparison):
        raise FilterError("a segment is one field", 0)
    target = resolve(node.field)
    if isinstance(target, ColumnTarget) and target.spec.type not in ("list", "json"):
        return Cast(F(target.spec.column), output_field=_text_field())
    if isinstance(target, JSONTarget) and target.path:
        expression: Any = F(target.column)
        for key in target.path[:-1]:
            expression = KeyTransform(str(key), expression)
        return KeyTextTransform(str(target.path[-1]), expression)
    raise FilterError(
        f"{field} cannot segment a monitor: name a span column or a metadata/attributes key", 0
    )


def _text_field() -> Any:
    from django.db.models import TextField

    return TextField()


def window_spans(
    *, project: Project | int, filter_q: Q, start: datetime, end: datetime
) -> QuerySet[Span]:
    """The spans of ``project`` that started in ``[start, end)`` and match the filter."""
    project_id = project if isinstance(project, int) else project.pk
    return Span.objects.filter(
        project_id=project_id, start_time__gte=start, start_time__lt=end
    ).filter(filter_q)


def span_id_bounds(
    *, project: Project | int, start: datetime, end: datetime
) -> tuple[int, int] | None:
    """The lowest and highest id of the spans of ``project`` that started in ``[start, end)``
    (whatever the filter: one index-only scan of ``span_project_newest``), or ``None`` for an
    empty window. ``id + 0`` keeps PostgreSQL from answering ``min(id)`` by walking the primary
    key until a span of the window turns up, which reads most of the table for an old window."""
    project_id = project if isinstance(project, int) else project.pk
    row = Span.objects.filter(
        project_id=project_id, start_time__gte=start, start_time__lt=end
    ).aggregate(low=Min(F("id") + 0), high=Max(F("id") + 0))
    if row["low"] is None:
        return None
    return int(row["low"]), int(row["high"])


def filter_reads_metadata(text: str) -> bool:
    """Whether a filter compares a ``metadata.*`` key. Such a filter is answered from the
    metadata GIN index, which PostgreSQL may prefer to the window's time range — reading every
    span of the tier in the project rather than those of the window (error rate of a tier over
    a day: ~480 ms against ~170 ms read by the window's id range). Other filters gain nothing
    from the range and pay for it (p95 latency of LLM spans over a day: ~360 ms with it, ~100
    without), so only these get it."""
    node = parse(text) if text.strip() else None
    pending: list[Any] = [node] if node is not None else []
    while pending:
        item = pending.pop()
        if isinstance(item, FieldRef):
            try:
                target = resolve(item)
            except FilterError:
                continue
            if isinstance(target, JSONTarget) and target.column == "metadata":
                return True
        elif isinstance(item, Comparison):
            pending.append(item.field)
        elif isinstance(item, Calculation | Arithmetic):
            pending.extend([item.left, item.right])
        elif isinstance(item, And | Or):
            pending.extend(item.children)
        elif isinstance(item, Not):
            pending.append(item.child)
    return False


def _grouped(query: QuerySet[Any], segment: Expression | F | None, **aggregates: Any) -> list[dict]:
    if segment is None:
        row = query.aggregate(**aggregates)
        return [{"_segment": NO_SEGMENT, **row}]
    return list(
        query.annotate(_segment=segment)
        .order_by()
        .values("_segment")
        .annotate(**aggregates)
        .values("_segment", *aggregates)
    )


def _merge(rows: list[dict], into: dict[str, dict[str, float]]) -> None:
    for row in rows:
        key = row.pop("_segment")
        key = NULL_SEGMENT if key is None else str(key)
        slot = into.setdefault(key, {})
        for name, value in row.items():
            slot[name] = slot.get(name, 0) + (value or 0)


def _result_rows(
    spans: QuerySet[Span], *, kinds: tuple[str, ...], name: str, label: str, mean: bool,
    segment: Expression | F | None, bounds: tuple[int, int],
) -> dict[str, dict[str, float]]:  # fmt: skip
    found: dict[str, dict[str, float]] = {}
    for prefix, base, narrow in (
        # One filter() call: the bound is on the same join as the name (a second call would
        # join the annotations again), and on the annotation's span_id, which PostgreSQL
        # reads from its index (a range on the span's id is not carried across the join).
        (
            "annotations",
            spans,
            {"annotations__span__gte": bounds[0], "annotations__span__lte": bounds[1]},
        ),
        ("trace__annotations", spans.filter(parent_id__isnull=True), {}),
    ):
        joined = base.filter(
            **{f"{prefix}__name": name, f"{prefix}__annotator_kind__in": kinds}, **narrow
        )
        if mean:
            score = F(f"{prefix}__score")
            aggregates = {
                "n": Count(f"{prefix}__score"),
                "total": Sum(score, output_field=FloatField()),
                "squares": Sum(score * score, output_field=FloatField()),
            }
        else:
            aggregates = {
                "n": Count(f"{prefix}__id"),
                "hits": Count(f"{prefix}__id", filter=Q(**{f"{prefix}__label": label})),
            }
        _merge(_grouped(joined, segment, **aggregates), found)
    return found


def _mean_stats(slot: dict[str, float]) -> WindowStats:
    n = int(slot.get("n", 0))
    if n == 0:
        return WindowStats(value=None, samples=0)
    mean = slot["total"] / n
    variance = (slot["squares"] - n * mean * mean) / (n - 1) if n > 1 else 0.0
    return WindowStats(value=mean, samples=n, variance=max(variance, 0.0))


def _rate_stats(slot: dict[str, float]) -> WindowStats:
    n, hits = int(slot.get("n", 0)), int(slot.get("hits", 0))
    return WindowStats(value=hits / n if n else None, samples=n, hits=hits)


def _percentile_python(
    spans: QuerySet[Span], segment: Expression | F | None, fraction: float
) -> dict[str, WindowStats]:
    values: dict[str, list[float]] = {}
    query = spans.annotate(_segment=segment) if segment is not None else spans
    for row in query.values_list("latency_ms", *(["_segment"] if segment is not None else [])):
        key = NO_SEGMENT if segment is None else (NULL_SEGMENT if row[1] is None else str(row[1]))
        values.setdefault(key, []).append(row[0])
    found = {}
    for key, items in values.items():
        items.sort()
        position = fraction * (len(items) - 1)
        low, high = math.floor(position), math.ceil(position)
        value = items[low] + (items[high] - items[low]) * (position - low)
        found[key] = WindowStats(value=value, samples=len(items))
    return found


def metric_window(
    *,
    project: Project | int,
    metric: str,
    filter_q: Q,
    start: datetime,
    end: datetime,
    result_name: str = "",
    label: str = "",
    segment: Expression | F | None = None,
    by_id_range: bool = False,
) -> dict[str, WindowStats]:
    """``metric`` over the window ``[start, end)``, by segment (``""`` without a segment).
    A window without data gives ``{}``, or a zero for sums and counts. ``by_id_range``
    (``filter_reads_metadata``) reads a span metric's spans by the window's id range too."""
    spans = window_spans(project=project, filter_q=filter_q, start=start, end=end)
    bounds = None
    if metric in RESULT_METRICS or by_id_range:  # one index-only scan of the window
        bounds = span_id_bounds(project=project, start=start, end=end)
    if by_id_range and bounds is not None and metric not in RESULT_METRICS:
        spans = spans.filter(id__gte=bounds[0], id__lte=bounds[1])
    if metric in RESULT_METRICS:
        human = metric.startswith("annotation")
        kinds = (AnnotatorKind.HUMAN,) if human else (AnnotatorKind.LLM, AnnotatorKind.CODE)
        mean = metric in MEAN_METRICS
        if bounds is None:
            return {}
        rows = _result_rows(
            spans,
            kinds=kinds,
            name=result_name,
            label=label,
            mean=mean,
            segment=segment,
            bounds=bounds,
        )
        convert = _mean_stats if mean else _rate_stats
        return {key: convert(slot) for key, slot in rows.items() if slot.get("n")}
    if metric == "error_rate":
        errors = _grouped(
            spans, segment, n=Count("id"), hits=Count("id", filter=Q(status_code=StatusCode.ERROR))
        )
        found: dict[str, dict[str, float]] = {}
        _merge(errors, found)
        return {key: _rate_stats(slot) for key, slot in found.items() if slot.get("n")}
    if metric in PERCENTILES:
        fraction = PERCENTILES[metric]
        if connection.vendor != "postgresql":
            return _percentile_python(spans, segment, fraction)
        percentiles = _grouped(
            spans, segment, n=Count("id"), value=PercentileCont("latency_ms", fraction)
        )
        return {
            (NULL_SEGMENT if r["_segment"] is None else str(r["_segment"])): WindowStats(
                value=r["value"], samples=int(r["n"])
            )
            for r in percentiles
            if r["n"]
        }
    if metric == "tokens":
        total: Any = Sum(Coalesce("total_tokens", 0))
    elif metric == "cost":
        total = Sum(Coalesce("cost", 0.0), output_field=FloatField())
    elif metric == "span_count":
        total = Count("id")
    else:
        raise ValueError(f"unknown metric {metric!r}")
    totals = _grouped(spans, segment, n=Count("id"), value=total)
    return {
        (NULL_SEGMENT if r["_segment"] is None else str(r["_segment"])): WindowStats(
            value=float(r["value"] or 0), samples=int(r["n"] or 0)
        )
        for r in totals
    }


__all__ = [
    "MEAN_METRICS",
    "PERCENTILES",
    "RATE_METRICS",
    "RESULT_METRICS",
    "SUM_METRICS",
    "WindowStats",
    "filter_reads_metadata",
    "metric_window",
    "segment_expression",
    "span_id_bounds",
    "window_spans",
]
