"""Formatting and links for the trace browser tables. Everything returned is plain text that
templates escape as usual; nothing here marks span content safe."""

from __future__ import annotations

from datetime import datetime, timedelta

from django import template
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from evalhub.core.converters import name_segment
from tracing.browser import project_tabs

register = template.Library()


_SLOT = "0e5a1f7c9d"  # a key value no id equals, replaced in the reversed URL


def link_or_empty(name: str, key: str, value: str, **kwargs: str) -> str:
    """``reverse(name, kwargs={**kwargs, key: value})``, or "" while that page does not exist
    (or ``value`` cannot be in it)."""
    try:
        return reverse(name, kwargs={**kwargs, key: value})
    except NoReverseMatch:
        return ""


def _row_link(context: template.Context, name: str, key: str, value: str, **kwargs: str) -> str:
    """``link_or_empty`` for one table row. The URL is reversed once per page render with a
    placeholder for ``value``, then filled in per row: reversing is slow at 50 rows a page."""
    if not value:
        return ""
    render = context.render_context  # per render: (django-stubs type setdefault too narrowly)
    if "tracing_browser_links" not in render:
        render["tracing_browser_links"] = {}
    cache: dict[tuple[str, str, tuple[tuple[str, str], ...]], str] = render["tracing_browser_links"]
    cache_key = (name, key, tuple(sorted(kwargs.items())))
    if cache_key not in cache:
        cache[cache_key] = link_or_empty(name, key, _SLOT, **kwargs)
    pattern: str = cache[cache_key]
    if not pattern:
        return ""
    head, _, tail = pattern.rpartition(_SLOT)  # the id comes after the project's name
    return f"{head}{name_segment(value)}{tail}"


@register.simple_tag(takes_context=True)
def shared_query(context: template.Context) -> str:
    """The time range of the page's URL as a query string for the project tabs."""
    request = context.get("request")
    return project_tabs.shared_query(request.GET) if request is not None else ""


@register.simple_tag(takes_context=True)
def trace_url(context: template.Context, project: str, trace_id: str) -> str:
    """The trace detail page (``detail:trace``), or "" when it does not exist."""
    return _row_link(context, "detail:trace", "trace_id", trace_id, project=project)


@register.simple_tag(takes_context=True)
def session_url(context: template.Context, project: str, session_id: str) -> str:
    """The session detail page (``detail:session``), or "" when it does not exist."""
    return _row_link(context, "detail:session", "session_id", session_id, project=project)


@register.filter
def stamp(value: datetime | None) -> str:
    """``2026-11-20 12:00:05`` in the server's time zone (UTC by default)."""
    if value is None:
        return "—"
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S")


@register.filter
def iso(value: datetime | None) -> str:
    return value.isoformat() if value is not None else ""


@register.filter
def ms(value: float | timedelta | None) -> str:
    """A duration for people: ``850 ms``, ``2.41 s``, ``3m 05s``."""
    if value is None:
        return "—"
    millis = value / timedelta(milliseconds=1) if isinstance(value, timedelta) else float(value)
    if millis < 1000:
        return f"{millis:.0f} ms"
    if millis < 60_000:
        return f"{millis / 1000:.2f} s"
    minutes, seconds = divmod(int(millis // 1000), 60)
    if minutes < 60:
        return f"{minutes}m {seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


@register.filter
def usd(value: float | None) -> str:
    if value is None:
        return "—"
    if value == 0:
        return "$0"
    if value < 0.01:
        return f"${value:.4f}"
    return f"${value:,.2f}"


@register.filter
def count(value: int | None) -> str:
    """``1234567`` → ``1,234,567``; None → ``—``."""
    if value is None:
        return "—"
    return f"{value:,}"


@register.filter
def percent(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.1f}%"
