"""Pages show times in the reader's zone; URLs keep meaning the same instants.

The zone of a page, first found of:

1. ``tz`` in the query string — a link with a custom time range names the zone its ``start``
   and ``end`` are in, so a shared link means the same instants to everyone;
2. UTC when the query string has ``start`` or ``end`` but no ``tz`` (links made before zones:
   their times were UTC);
3. the person's setting (Settings → Preferences);
4. their browser's zone, which ``static/js/app.js`` keeps in the ``evalhub_tz`` cookie;
5. UTC.

Forms read naive times (``datetime-local`` fields) in the active zone, so the same rule decides
both what is shown and what typed times mean. The REST API is left alone: its times carry
their offsets.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from evalhub.identity.policy import is_api_route
from evalhub.preferences.selectors import user_time_zone
from evalhub.preferences.zones import UTC_NAME, zone_get

BROWSER_COOKIE: Final = "evalhub_tz"


def request_time_zone(request: HttpRequest) -> tuple[str, str]:
    """(zone name, where it came from: ``link``, ``setting``, ``browser`` or ``default``)."""
    linked = request.GET.get("tz")
    if zone_get(linked) is not None:
        return str(linked), "link"
    if request.GET.get("start") or request.GET.get("end"):
        return UTC_NAME, "link"
    chosen = user_time_zone(user=request.user) if hasattr(request, "user") else ""
    if chosen and zone_get(chosen) is not None:
        return chosen, "setting"
    browser = request.COOKIES.get(BROWSER_COOKIE)
    if zone_get(browser) is not None:
        return str(browser), "browser"
    return UTC_NAME, "default"


class TimeZoneMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()

    def process_view(
        self, request: HttpRequest, view: Callable[..., Any], args: Any, kwargs: Any
    ) -> None:
        match = request.resolver_match
        if match is not None and is_api_route(match):
            return
        name, source = request_time_zone(request)
        zone = zone_get(name)
        if zone is not None:
            timezone.activate(zone)
        request.time_zone_name = name  # type: ignore[attr-defined]  # set here for the template tags
        request.time_zone_source = source  # type: ignore[attr-defined]  # set here for the template tags


def time_zone_context(request: HttpRequest) -> dict[str, str]:
    """Template context: ``time_zone`` (the page's zone) and ``time_zone_source``."""
    return {
        "time_zone": getattr(request, "time_zone_name", UTC_NAME),
        "time_zone_source": getattr(request, "time_zone_source", "default"),
    }
