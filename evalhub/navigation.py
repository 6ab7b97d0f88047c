"""The main navigation. An entry is shown only once its page exists (its URL name resolves)."""

from __future__ import annotations

from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse

from annotations.roles import ANNOTATOR_PAGES, is_annotator

# (label, url name, the first path segment that marks it active)
NAVIGATION = [
    ("Projects", "tracing:projects", "projects"),
    ("Evaluators", "evaluators:list", "evaluators"),
    ("Tasks", "tasks:list", "tasks"),
    ("Annotation queues", "annotations:queues", "queues"),
    ("Datasets", "annotations:datasets", "datasets"),
    ("Settings", "evaluators:providers", "settings"),
]


# Settings pages: (label, url name), shown as tabs on each settings page when they exist.
SETTINGS_NAVIGATION = [
    ("AI providers", "evaluators:providers"),
    ("Annotation configs", "annotations:configs"),
]


def navigation(request: HttpRequest) -> dict[str, object]:
    """Template context: ``nav`` — the entries whose pages exist, with the active one marked."""
    first_segment = request.path.strip("/").split("/", 1)[0]
    annotator = is_annotator(getattr(request, "user", None))
    entries = []
    for label, url_name, segment in NAVIGATION:
        if annotator and url_name not in ANNOTATOR_PAGES:
            continue
        try:
            url = reverse(url_name)
        except NoReverseMatch:
            continue
        entries.append({"label": label, "url": url, "active": first_segment == segment})
    settings_entries = []
    for label, url_name in SETTINGS_NAVIGATION if not annotator else ():
        try:
            url = reverse(url_name)
        except NoReverseMatch:
            continue
        settings_entries.append({"label": label, "url": url, "active": request.path == url})
    return {"nav": entries, "settings_nav": settings_entries}
