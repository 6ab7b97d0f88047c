"""Time zone names: which are valid, and the list people choose from."""

from __future__ import annotations

import zoneinfo
from functools import cache
from typing import Final

UTC_NAME: Final = "UTC"
MAX_LENGTH: Final = 64


@cache
def zone_names() -> tuple[str, ...]:
    """Every IANA zone name this machine knows, sorted, ``UTC`` first."""
    names = sorted(zoneinfo.available_timezones() - {UTC_NAME})
    return (UTC_NAME, *names)


def zone_get(name: object) -> zoneinfo.ZoneInfo | None:
    """The zone named ``name`` (any value, e.g. from a cookie or a URL), or None."""
    if not isinstance(name, str) or not name or len(name) > MAX_LENGTH:
        return None
    if name not in zone_names():
        return None
    return zoneinfo.ZoneInfo(name)
