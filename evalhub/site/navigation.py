"""The main navigation. An entry is shown only once its page exists (its URL name resolves) and
the signed-in person may open it (``evalhub.identity.policy``)."""

from __future__ import annotations

from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse

from evalhub.identity.access import Need, Principal
from evalhub.identity.auth import request_principal
from evalhub.identity.policy import page_rule

# (label, url name, the first path segment that marks it active)
NAVIGATION = [
    ("Projects", "tracing:projects", "projects"),
    ("Evaluators", "evaluators:list", "evaluators"),
    ("Tasks", "tasks:list", "tasks"),
    ("Annotation queues", "annotations:queues", "queues"),
    ("Datasets", "annotations:datasets", "datasets"),
    ("Monitors", "monitors:list", "monitors"),
    ("Settings", "settings", "settings"),
]


# Settings pages: (label, url name), shown as tabs on each settings page when they exist.
SETTINGS_NAVIGATION = [
    ("AI providers", "evaluators:providers"),
    ("Annotation configs", "annotations:configs"),
    ("API keys", "settings:api-keys"),
    ("Notification channels", "monitors:channels"),
    ("Users and roles", "settings:users"),
    ("Budgets", "budgets:list"),
]
# One's own settings: a tab after the team's, and the link on one's name in the top bar (so
# annotators, who have no Settings entry, reach it too).
PERSONAL_SETTINGS_NAVIGATION = [("Preferences", "settings:preferences")]


def _may_open(principal: Principal, url_name: str) -> bool:
    rule = page_rule(url_name)
    return rule is not None and principal.can(rule.read)


def _entries(principal: Principal, pages: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """(label, url) of the pages that exist and that ``principal`` may open."""
    found = []
    for label, url_name in pages:
        if not _may_open(principal, url_name):
            continue
        try:
            found.append((label, reverse(url_name)))
        except NoReverseMatch:
            continue
    return found


def navigation(request: HttpRequest) -> dict[str, object]:
    """Template context: ``nav`` — the entries whose pages exist, with the active one marked;
    ``settings_nav`` — the settings tabs; ``can`` — what the signed-in person may do, to hide
    the buttons of actions they may not take (the server checks them anyway)."""
    principal = request_principal(request)
    first_segment = request.path.strip("/").split("/", 1)[0]
    settings_entries = [
        {"label": label, "url": url, "active": request.path == url}
        for label, url in _entries(principal, SETTINGS_NAVIGATION)
    ]
    personal_entries = [
        {"label": label, "url": url, "active": request.path == url}
        for label, url in _entries(principal, PERSONAL_SETTINGS_NAVIGATION)
    ]
    entries = []
    for label, url_name, segment in NAVIGATION:
        if url_name == "settings":
            # The Settings entry opens the first settings page this person may see.
            if settings_entries:
                entries.append(
                    {
                        "label": label,
                        "url": settings_entries[0]["url"],
                        "active": first_segment == segment,
                    }
                )
            continue
        for _label, url in _entries(principal, [(label, url_name)]):
            entries.append({"label": label, "url": url, "active": first_segment == segment})
    can = {need.name.lower(): principal.can(need) for need in Need}
    return {
        "nav": entries,
        "settings_nav": settings_entries + personal_entries,
        "preferences_url": personal_entries[0]["url"] if personal_entries else None,
        "can": can,
    }
