"""Times for people: shown in the page's zone (``evalhub.preferences``), UTC on hover.

``{{ value|when }}`` → ``<time datetime="…" title="2026-12-07 09:35:24 UTC">2026-12-07 10:35:24</time>``;
``{{ value|when:"H:i" }}`` picks the shown format (Django's ``date`` format characters);
``{{ value|utc }}`` → ``2026-12-07 09:35:24 UTC`` (for a ``title``)."""

from __future__ import annotations

from datetime import UTC, datetime

from django import template
from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.utils.html import format_html
from django.utils.safestring import SafeString

register = template.Library()

SHOWN = "Y-m-d H:i:s"


@register.filter
def utc(value: datetime | None) -> str:
    if not isinstance(value, datetime):
        return ""
    if timezone.is_naive(value):
        value = timezone.make_aware(value, UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@register.filter
def when(value: datetime | None, shown: str = SHOWN) -> SafeString | str:
    if not isinstance(value, datetime):
        return "—"
    if timezone.is_naive(value):
        value = timezone.make_aware(value, UTC)
    local = timezone.localtime(value)
    return format_html(
        '<time datetime="{}" title="{}">{}</time>',
        value.astimezone(UTC).isoformat(),
        utc(value),
        date_format(local, shown),
    )
