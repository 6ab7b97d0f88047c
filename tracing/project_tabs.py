"""The tabs along a project's pages. Traces, spans and sessions are the trace browser's own;
other apps add theirs (annotations, score trends…) and a tab shows only once its page exists
(its URL name resolves), as in ``evalhub.navigation``."""

from __future__ import annotations

from django.urls import NoReverseMatch, reverse

# (key, label, url name taking ``project``)
PROJECT_TABS = [
    ("traces", "Traces", "tracing:traces"),
    ("spans", "Spans", "tracing:spans"),
    ("sessions", "Sessions", "tracing:sessions"),
    ("annotations", "Annotations", "annotations:project-annotations"),
    ("trends", "Score trends", "tasks:trends"),
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
