"""Template helpers of the calibration fragments: a dict looked up by a variable key, and
rates and intervals as percentages."""

from __future__ import annotations

from typing import Any

from django import template

register = template.Library()


@register.simple_tag
def lookup(mapping: dict[Any, Any] | None, key: Any) -> Any:
    """``mapping[key]``, or None: ``{% lookup calibrations trend.name as found %}``."""
    return (mapping or {}).get(key)


@register.filter
def pct(value: float | None) -> str:
    """0.8123 → "81.2 %"; None → "—"."""
    return "—" if value is None else f"{value * 100:.1f} %"


@register.filter
def ci_pct(interval: Any) -> str:
    """An interval of proportions as "78.0-84.1 %"; None → ""."""
    if interval is None:
        return ""
    return f"{interval.low * 100:.1f}-{interval.high * 100:.1f} %"


@register.filter
def num(value: float | None) -> str:
    """A kappa or another coefficient with 3 decimals; None → "—"."""
    return "—" if value is None else f"{value:.3f}"


@register.filter
def ci_num(interval: Any) -> str:
    if interval is None:
        return ""
    return f"{interval.low:.3f} to {interval.high:.3f}"
