"""The span kind badge: ``<span class="kind {{ span.span_kind|kind_class }}">``.

A span keeps whatever kind it was sent with, so the class is built only from a kind that is a
plain identifier (``kind-PROMPT``, ``kind-MCP_CALL``); anything else gets ``kind-other``.
Known kinds are coloured in ``static/css/app.css``; others show the plain ``.kind`` badge.
"""

from __future__ import annotations

import re

from django import template

register = template.Library()

_IDENTIFIER = re.compile(r"[A-Z0-9_]{1,64}")


@register.filter
def kind_class(kind: str | None) -> str:
    """The CSS class of a span kind's badge."""
    text = str(kind or "")
    return f"kind-{text}" if _IDENTIFIER.fullmatch(text) else "kind-other"
