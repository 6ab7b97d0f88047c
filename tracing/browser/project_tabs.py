"""The tabs along a project's pages. Traces, spans and sessions are the trace browser's own;
other apps add theirs (annotations, score trends…) and a tab shows only once its page exists
(its URL name resolves), as in ``evalhub.site.navigation``.

Every tab page reads the time range from the same parameters (``range``, and ``start``/``end``
for ``range=custom``), so the tab links carry them (``shared_query``): switching tabs keeps the
window one is looking at.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import urlencode

from django.urls import NoReverseMatch, reverse

from tracing.browser.filters import RANGE_CHOICES

RANGE_KEYS: Final = frozenset(key for key, _label in RANGE_CHOICES)
MAX_MOMENT_CHARS: Final = 40  # a datetime-local value is 16; anything longer is not one

# (key, label, url name taking ``project``)
PROJECT_TABS = [
    ("traces", "Traces", "tracing:traces"),
    ("spans", "Spans", "tracing:spans"),
    ("sessions", "Sessions", "tracing:sessions"),
    ("annotations", "Annotations", "annotations:project-annotations"),
    ("trends", "Score trends", "tasks:trends"),
    ("automations", "Automations", "monitors:automations"),
]


def project_tabs(project_name: str) -> list[tuple[str, str, str]]:
    """``(key, label, url)`` for each tab whose page exists."""
    tabs = []
    for key, label, url_name in PROJECT_TABS:
        try:
            url = reverse(url_name, kwargs={"project": project_name})
        except NoReverseMatch:
            continue
        tabs.append((key, label, url))
    return tabs


def shared_query(params: Mapping[str, Any]) -> str:
    """``?range=…`` (with ``start``/``end`` for a custom range) from a page's GET parameters,
    for the tab links; "" when no range is chosen (each tab's own default)."""
    range_key = params.get("range") or ""
    if range_key not in RANGE_KEYS:
        return ""
    shared = {"range": range_key}
    if range_key == "custom":
        for name in ("start", "end"):
            value = params.get(name) or ""
            if value and len(value) <= MAX_MOMENT_CHARS:
                shared[name] = value
    return "?" + urlencode(shared)
