"""The main navigation. An entry is shown only once its page exists (its URL name resolves)."""

from __future__ import annotations

from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse

# (label, url name, the first path segment that marks it active)
NAVIGATION = [
    ("Projects", "tracing:projects", "projects"),
    ("Evaluators", "evaluators:list", "evaluators"),
    ("Tasks", "tasks:list", "tasks"),
    ("Annotation queues", "annotations:queues", "queues"),
    ("Datasets", "annotations:datasets", "datasets"),
    ("Settings", "evaluators:providers", "settings"),
]


def navigation(request: HttpRequest) -> dict[str, object]:
    """Template context: ``nav`` — the entries whose pages exist, with the active one marked."""
    first_segment = request.path.strip("/").split("/", 1)[0]
    entries = []
    for label, url_name, segment in NAVIGATION:
        try:
            url = reverse(url_name)
        except NoReverseMatch:
            continue
        entries.append({"label": label, "url": url, "active": first_segment == segment})
    return {"nav": entries}
