"""Score-trend charts drawn on the server: the coordinates of an inline SVG's bars, line and
ticks, and the trace-browser links of a chart's legend.

Everything here is numbers and plain text; the template writes the SVG elements and escapes
labels (user data) as usual, nothing is marked safe.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final
from urllib.parse import urlencode

from django import template
from django.urls import NoReverseMatch, reverse

from annotations.naming import filter_field
from evalhub.trends.selectors import Trend, TrendBucket
from tracing.browser.filters import quote

register = template.Library()

# The drawing area, in SVG user units (the SVG scales to its box).
WIDTH: Final = 640
HEIGHT: Final = 230
LEFT: Final = 52
RIGHT: Final = 14
TOP: Final = 12
BOTTOM: Final = 44
PLOT_WIDTH: Final = WIDTH - LEFT - RIGHT
PLOT_HEIGHT: Final = HEIGHT - TOP - BOTTOM
MAX_X_TICKS: Final = 7
# The project cards' label colors, in the same order (most results first).
PALETTE: Final = (
    "#4f46e5",
    "#f59e0b",
    "#10b981",
    "#ef4444",
    "#06b6d4",
    "#a855f7",
    "#84cc16",
    "#64748b",
    "#ec4899",
)
NO_LABEL_COLOR: Final = "#9ca3af"
NO_LABEL: Final = "(no label)"
LINE_COLOR: Final = "#4f46e5"
# Where a kind of evaluated item is listed in the trace browser.
TARGET_TABS: Final = {"SPAN": "spans", "TRACE": "traces", "SESSION": "sessions"}


@dataclass(frozen=True, slots=True)
class Tick:
    position: float  # x for the time axis, y for a value axis
    text: str


@dataclass(frozen=True, slots=True)
class LegendEntry:
    label: str | None  # None: results without a label
    text: str
    color: str
    count: int


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    color: str
    title: str


@dataclass(frozen=True, slots=True)
class Point:
    x: float
    y: float
    title: str


@dataclass(frozen=True, slots=True)
class Row:
    """A line of a chart's table fallback."""

    when: str
    counts: list[int]
    total: int
    scored: int
    mean_score: str


@dataclass(slots=True)
class Chart:
    """What one SVG chart draws."""

    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right_edge: int = WIDTH - RIGHT
    top: int = TOP
    bottom: int = TOP + PLOT_HEIGHT
    middle_x: float = LEFT + PLOT_WIDTH / 2
    middle_y: float = TOP + PLOT_HEIGHT / 2
    x_ticks: list[Tick] = field(default_factory=list)
    y_ticks: list[Tick] = field(default_factory=list)
    bars: list[Bar] = field(default_factory=list)
    path: str = ""  # joins means of adjacent buckets
    gap_path: str = ""  # joins means across buckets without scores (drawn dashed)
    points: list[Point] = field(default_factory=list)


@dataclass(slots=True)
class TrendCharts:
    """A trend's two charts (label mix, mean score), their legend and table."""

    mix: Chart
    score: Chart | None  # None when no result in the range has a score
    legend: list[LegendEntry]
    rows: list[Row]
    x_label: str


# --- scales ------------------------------------------------------------------------------------


def nice_step(span: float, *, ticks: int = 4, whole: bool = False) -> float:
    """A round step (1, 2, 2.5 or 5 times a power of ten) that cuts ``span`` into about
    ``ticks`` parts; at least 1 for whole numbers."""
    if span <= 0:
        return 1.0
    raw = span / ticks
    magnitude = 10 ** math.floor(math.log10(raw))
    for multiple in (1, 2, 2.5, 5, 10):
        step = multiple * magnitude
        if step >= raw:
            break
    return max(step, 1.0) if whole else step


def _number(value: float) -> str:
    """``0.25``, ``1``, ``1,200``: short, no trailing zeros."""
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.3f}".rstrip("0").rstrip(".")


def _round(value: float) -> float:
    return round(value, 2)


def _bucket_text(moment: datetime, bucket: str, *, full: bool = False) -> str:
    if bucket == "hour":
        return f"{moment:%Y-%m-%d %H:%M}" if full else f"{moment:%b} {moment.day} {moment:%H:%M}"
    if bucket == "week":
        return f"week of {moment:%Y-%m-%d}" if full else f"{moment:%b} {moment.day}"
    return f"{moment:%Y-%m-%d}" if full else f"{moment:%b} {moment.day}"


def _x_ticks(axis: list[datetime], bucket: str) -> list[Tick]:
    """Up to ``MAX_X_TICKS`` evenly spaced ticks; hourly ticks name the day only when it
    changes."""
    band = PLOT_WIDTH / len(axis)
    every = max(1, math.ceil(len(axis) / MAX_X_TICKS))
    ticks, last_day = [], None
    for index in range(0, len(axis), every):
        moment = axis[index]
        text = _bucket_text(moment, bucket)
        if bucket == "hour" and moment.date() == last_day:
            text = f"{moment:%H:%M}"
        last_day = moment.date()
        ticks.append(Tick(_round(LEFT + band * (index + 0.5)), text))
    return ticks


def _y(value: float, low: float, high: float) -> float:
    return _round(TOP + PLOT_HEIGHT * (1 - (value - low) / (high - low)))


def _y_ticks(low: float, high: float, step: float) -> list[Tick]:
    count = round((high - low) / step)
    return [Tick(_y(low + i * step, low, high), _number(low + i * step)) for i in range(count + 1)]


# --- charts ------------------------------------------------------------------------------------


def label_text(label: str | None) -> str:
    return NO_LABEL if label is None else label


def label_colors(trend: Trend) -> dict[str | None, str]:
    """A color per label, in the trend's order (most results first); no label is grey."""
    colors: dict[str | None, str] = {}
    for label in trend.labels:
        colors[label] = NO_LABEL_COLOR if label is None else PALETTE[len(colors) % len(PALETTE)]
    return colors


def label_mix_chart(trend: Trend, axis: list[datetime], bucket: str) -> Chart:
    """Stacked bars: per bucket, the results per label (most common at the bottom)."""
    chart = Chart(x_ticks=_x_ticks(axis, bucket))
    buckets = {b.start: b for b in trend.buckets}
    highest = max((b.total for b in trend.buckets), default=0)
    step = nice_step(highest, whole=True)
    top = max(step, math.ceil(highest / step) * step)
    chart.y_ticks = _y_ticks(0, top, step)
    colors = label_colors(trend)
    band = PLOT_WIDTH / len(axis)
    width = max(1.0, band * 0.72)
    for index, moment in enumerate(axis):
        found = buckets.get(moment)
        if found is None:
            continue
        x = LEFT + band * index + (band - width) / 2
        below = 0
        for label in trend.labels:
            count = found.counts.get(label, 0)
            if not count:
                continue
            y_top = _y(below + count, 0, top)
            chart.bars.append(
                Bar(
                    x=_round(x),
                    y=y_top,
                    width=_round(width),
                    height=_round(_y(below, 0, top) - y_top),
                    color=colors[label],
                    title=f"{_bucket_text(moment, bucket, full=True)}: "
                    f"{label_text(label)} {count} of {found.total}",
                )
            )
            below += count
    return chart


def mean_score_chart(trend: Trend, axis: list[datetime], bucket: str) -> Chart | None:
    """A line through each bucket's mean score, solid between adjacent buckets and dashed
    across buckets without scores. The value axis spans 0 to 1 at least, more when the means
    go beyond."""
    means = [b for b in trend.buckets if b.mean_score is not None]
    if not means:
        return None
    values = [b.mean_score for b in means if b.mean_score is not None]
    low, high = min(0.0, *values), max(1.0, *values)
    step = nice_step(high - low)
    low, high = math.floor(low / step) * step, math.ceil(high / step) * step
    chart = Chart(x_ticks=_x_ticks(axis, bucket), y_ticks=_y_ticks(low, high, step))
    by_start: dict[datetime, TrendBucket] = {b.start: b for b in means}
    band = PLOT_WIDTH / len(axis)
    solid: list[str] = []
    dashed: list[str] = []
    previous: tuple[int, float, float] | None = None  # the last point: bucket index, x, y
    for index, moment in enumerate(axis):
        found = by_start.get(moment)
        if found is None or found.mean_score is None:
            continue
        x, y = _round(LEFT + band * (index + 0.5)), _y(found.mean_score, low, high)
        if previous is None:
            solid.append(f"M{x:g},{y:g}")
        elif previous[0] == index - 1:
            solid.append(f"L{x:g},{y:g}")
        else:
            dashed.append(f"M{previous[1]:g},{previous[2]:g} L{x:g},{y:g}")
            solid.append(f"M{x:g},{y:g}")
        previous = (index, x, y)
        chart.points.append(
            Point(
                x,
                y,
                f"{_bucket_text(moment, bucket, full=True)}: mean score "
                f"{score(found.mean_score)} of {found.scored}",
            )
        )
    chart.path = " ".join(solid)
    chart.gap_path = " ".join(dashed)
    return chart


def trend_table(trend: Trend, bucket: str) -> list[Row]:
    """The numbers behind both charts: the buckets that have results."""
    return [
        Row(
            when=_bucket_text(b.start, bucket, full=True),
            counts=[b.counts.get(label, 0) for label in trend.labels],
            total=b.total,
            scored=b.scored,
            mean_score=score(b.mean_score),
        )
        for b in trend.buckets
    ]


@register.filter
def score(value: float | None) -> str:
    """A mean score as shown: three decimals at most, no trailing zeros (``0.7``, ``0.667``)."""
    return "—" if value is None else _number(round(value, 3))


def axis_label(bucket: str) -> str:
    return f"Time of the evaluated item (UTC), per {bucket}"


@register.simple_tag
def trend_charts(trend: Trend, axis: list[datetime], bucket: str) -> TrendCharts:
    """``{% trend_charts trend axis bucket as charts %}``"""
    colors = label_colors(trend)
    totals = {label: 0 for label in trend.labels}
    for b in trend.buckets:
        for label, count in b.counts.items():
            totals[label] += count
    return TrendCharts(
        mix=label_mix_chart(trend, axis, bucket),
        score=mean_score_chart(trend, axis, bucket),
        legend=[
            LegendEntry(label, label_text(label), colors[label], totals[label])
            for label in trend.labels
        ],
        rows=trend_table(trend, bucket),
        x_label=axis_label(bucket),
    )


# --- links to the trace browser ---------------------------------------------------------------


def result_field(trend: Trend) -> str:
    """The filter-language field of a trend's results: ``eval.<name>`` for evaluations (LLM
    and code annotators), ``annotation.<name>`` for human annotations (``annotations.naming``)."""
    return filter_field(trend.name, human=trend.human)


def label_filter(trend: Trend, label: str | None) -> str:
    """The filter-language expression for the items whose result has ``label`` (or, for None,
    that have a result of this name without a label)."""
    results = result_field(trend)
    if label is None:
        return f"{results} IS NOT NULL and {results}.label IS NULL"
    return f"{results}.label = {quote(label)}"


def browser_tab(trend: Trend) -> str:
    """The trace-browser tab listing what the trend evaluates (spans when mixed)."""
    if len(trend.target_kinds) == 1:
        return TARGET_TABS.get(trend.target_kinds[0], "spans")
    return "spans"


def browser_url(project: str, trend: Trend, expression: str, range_query: dict[str, str]) -> str:
    """The trace browser's tab for ``trend`` filtered by ``expression`` over the same time range;
    "" when that page does not exist."""
    try:
        path = reverse(f"tracing:{browser_tab(trend)}", kwargs={"project": project})
    except NoReverseMatch:
        return ""
    return f"{path}?{urlencode({'q': expression, **range_query})}"


@register.simple_tag(takes_context=True)
def label_url(context: template.Context, trend: Trend, label: str | None) -> str:
    """``{% label_url trend label %}``: the trace browser filtered to this label's results, over
    the page's time range (context: ``project``, ``range_query``)."""
    range_query: dict[str, Any] = context.get("range_query") or {}
    return browser_url(context["project"].name, trend, label_filter(trend, label), range_query)


@register.simple_tag(takes_context=True)
def results_url(context: template.Context, trend: Trend) -> str:
    """``{% results_url trend %}``: the trace browser filtered to the items this trend counts."""
    range_query: dict[str, Any] = context.get("range_query") or {}
    expression = f"{result_field(trend)} IS NOT NULL"
    return browser_url(context["project"].name, trend, expression, range_query)
