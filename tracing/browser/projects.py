"""Reads for the project list: a card per project with its traces, errors, tokens, cost,
latency percentiles and the mix of its evaluations' labels over a time range."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import Aggregate, Count, FloatField, Max, Min, Q, QuerySet

from annotations.models import Annotation, TargetKind
from annotations.naming import MACHINE_KINDS
from tracing.models import Project, Span, Trace
from tracing.store.hourly import percentile_from_bins, trace_totals

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
    latency_approximate: bool = False  # percentiles from histograms (``percentile_from_bins``)
    evaluations: list[EvaluationMix] = field(default_factory=list)

    @property
    def error_rate(self) -> float | None:
        """Share of traces with an error span, in percent; None without traces."""
        return 100.0 * self.errors / self.traces if self.traces else None


# Windows with at most this many traces in a project get its exact latency percentiles;
# larger ones get them from the hourly histograms (``tracing.store.hourly``).
EXACT_PERCENTILES_UP_TO = 20_000


def project_cards(
    *, start: datetime | None, end: datetime | None, now: datetime | None = None
) -> list[ProjectCard]:
    """One card per project with the stats of its traces that started in ``[start, end)``.

    Counts and sums come from the hourly roll-ups for the window's settled hours plus the
    traces of the rest (``trace_totals``). Latency percentiles are of trace latency: exact
    (``percentile_cont`` on PostgreSQL, ordered reads elsewhere) when the project has at most
    ``EXACT_PERCENTILES_UP_TO`` traces in the window, else from the merged latency histograms,
    within 4.43 % + 0.5 ms of the exact value (``percentile_from_bins``), and marked
    ``latency_approximate``. The label mix counts evaluations (LLM and code annotators) on the
    spans and traces of that window.
    """
    cards = {project.pk: ProjectCard(project) for project in Project.objects.order_by("name")}
    if not cards:
        return []
    totals = trace_totals(project_ids=list(cards), start=start, end=end, now=now)
    exact: list[int] = []
    for project_id, sums in totals.items():
        card = cards[project_id]
        card.traces, card.spans, card.errors = sums.traces, sums.spans, sums.errors
        card.tokens, card.cost = sums.tokens, sums.cost
        if 0 < card.traces <= EXACT_PERCENTILES_UP_TO:
            exact.append(project_id)
        elif card.traces:
            card.latency_p50_ms = percentile_from_bins(sums.bins, 0.5)
            card.latency_p99_ms = percentile_from_bins(sums.bins, 0.99)
            card.latency_approximate = card.latency_p50_ms is not None
    if exact:
        _percentiles_exact(cards, exact, start=start, end=end)
    for project_id, mixes in _label_mix(project_ids=list(cards), start=start, end=end).items():
        cards[project_id].evaluations = mixes
    return list(cards.values())


def _percentiles_exact(
    cards: dict[int, ProjectCard],
    project_ids: list[int],
    *,
    start: datetime | None,
    end: datetime | None,
) -> None:
    traces = Trace.objects.filter(start_time__isnull=False, project_id__in=project_ids)
    if start is not None:
        traces = traces.filter(start_time__gte=start)
    if end is not None:
        traces = traces.filter(start_time__lt=end)
    if connection.vendor == "postgresql":
        rows = (
            traces.values("project_id")
            .annotate(p50=PercentileCont("latency_ms", 0.5), p99=PercentileCont("latency_ms", 0.99))
            .order_by()
            .values_list("project_id", "p50", "p99")
        )
        for project_id, p50, p99 in rows:
            cards[project_id].latency_p50_ms, cards[project_id].latency_p99_ms = p50, p99
        return
    for project_id in project_ids:
        mine = traces.filter(project_id=project_id)
        cards[project_id].latency_p50_ms = percentile_cont(mine, "latency_ms", 0.5)
        cards[project_id].latency_p99_ms = percentile_cont(mine, "latency_ms", 0.99)


def _label_mix(
    *, project_ids: Sequence[int], start: datetime | None, end: datetime | None
) -> dict[int, list[EvaluationMix]]:
    counts: dict[tuple[int, str, str | None], int] = {}
    evaluations = Annotation.objects.filter(annotator_kind__in=MACHINE_KINDS)
    for project_id in project_ids:
        mine = evaluations.filter(project_id=project_id)
        if _window_covers(project_id, start=start, end=end):
            # Every span and trace of the project started in the window: count its evaluations
            # without reading a span (at a million spans the join was most of the page's time).
            grouped = [mine.filter(target_kind__in=(TargetKind.SPAN, TargetKind.TRACE))]
        else:
            # One grouped query per target kind: an OR across two outer joins would keep the
            # database from joining either side efficiently. A span's result carries its span's
            # start (no join with the spans); a trace's is joined on the trace's
            # (project, start_time) index.
            grouped = []
            for when, kind in (
                ("span_start_time", TargetKind.SPAN),
                ("trace__start_time", TargetKind.TRACE),
            ):
                window = Q(target_kind=kind)
                if kind == TargetKind.TRACE:
                    window &= Q(trace__project_id=project_id)
                if start is not None:
                    window &= Q(**{f"{when}__gte": start})
                if end is not None:
                    window &= Q(**{f"{when}__lt": end})
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
