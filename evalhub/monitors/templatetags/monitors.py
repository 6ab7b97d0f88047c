"""Charts drawn as inline SVG by the server (no script, no style attribute: the CSP allows
neither): a sparkline of recent checks and a history chart with the threshold or baseline and
the firing windows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django import template

from evalhub.monitors.metrics import RATE_METRICS

register = template.Library()

WIDTH, HEIGHT = 600.0, 160.0


def _scale(values: Sequence[float | None], extra: Sequence[float | None]) -> tuple[float, float]:
    known = [v for v in (*values, *extra) if v is not None]
    if not known:
        return 0.0, 1.0
    low, high = min(known), max(known)
    if low == high:
        low, high = low - 1 if low else 0.0, high + 1
    return min(low, 0.0) if low >= 0 else low, high


def _geometry(
    values: Sequence[float | None], extra: Sequence[float | None], width: float, height: float
) -> tuple[list[tuple[float, float] | None], Any]:
    low, high = _scale(values, extra)
    n = len(values)
    step = width / max(n - 1, 1)

    def y(v: float) -> float:
        return round(height - 4 - (v - low) / (high - low) * (height - 8), 1)

    points = [None if v is None else (round(i * step, 1), y(v)) for i, v in enumerate(values)]
    return points, y


def _polyline(points: list[tuple[float, float] | None]) -> list[str]:
    """Runs of known points as SVG ``points`` strings (a gap breaks the line)."""
    runs: list[str] = []
    current: list[tuple[float, float]] = []
    for point in points:
        if point is None:
            if current:
                runs.append(" ".join(f"{x},{y}" for x, y in current))
            current = []
        else:
            current.append(point)
    if current:
        runs.append(" ".join(f"{x},{y}" for x, y in current))
    return runs


@register.inclusion_tag("monitors/_sparkline.html")
def sparkline(checks: Sequence[Any]) -> dict[str, Any]:
    values = [c.value for c in checks]
    points, _y = _geometry(values, [], 120.0, 28.0)
    breaches = [p for p, c in zip(points, checks, strict=True) if p and c.status == "breach"]
    return {"runs": _polyline(points), "breaches": breaches, "empty": not any(points)}


@register.inclusion_tag("monitors/_chart.html")
def history_chart(
    points: Sequence[Any], threshold: float | None = None, metric: str = "", label: str = ""
) -> dict[str, Any]:
    """``points``: objects with ``value``, ``baseline`` (or ``baseline_value``), ``firing``,
    ``fired`` (or ``status``) and ``end`` / ``window_end``."""
    values = [p.value for p in points]
    baselines = [getattr(p, "baseline", getattr(p, "baseline_value", None)) for p in points]
    geometry, y = _geometry(values, [*baselines, threshold], WIDTH, HEIGHT)
    base_geometry = [
        None if b is None else (g[0] if g else round(i * WIDTH / max(len(points) - 1, 1), 1), y(b))
        for i, (b, g) in enumerate(zip(baselines, geometry, strict=True))
    ]
    step = WIDTH / max(len(points) - 1, 1)
    firing = [
        round(max(i * step - step / 2, 0), 1)
        for i, p in enumerate(points)
        if getattr(p, "firing", False) or getattr(p, "status", "") == "breach"
    ]
    fired = [g for g, p in zip(geometry, points, strict=True) if g and getattr(p, "fired", False)]
    percent = metric in RATE_METRICS
    known = [v for v in values if v is not None]
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "runs": _polyline(geometry),
        "baseline_runs": _polyline(base_geometry),
        "threshold_y": y(threshold) if threshold is not None else None,
        "firing": firing,
        "band": round(max(step, 2.0), 1),
        "fired": fired,
        "label": label,
        "first": points[0] if points else None,
        "last": points[-1] if points else None,
        "max": (max(known) * (100 if percent else 1)) if known else None,
        "percent": percent,
    }


@register.filter
def metric_value(value: float | None, metric: str) -> str:
    from evalhub.monitors.notify import _format

    return _format(metric, value)


@register.inclusion_tag("monitors/_firing.html", takes_context=True)
def firing_monitors(context: Any, project: Any) -> dict[str, Any]:
    """The project's firing monitors, for the project pages' header."""
    from evalhub.monitors.selectors import monitors_firing

    return {"firing": list(monitors_firing(project=project)), "project": project}
