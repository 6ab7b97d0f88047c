from __future__ import annotations

from django.contrib.auth.models import User
from django.db import transaction

from evalhub.core.fields import FieldInvalid
from evalhub.preferences.models import UserPreferences
from evalhub.preferences.zones import zone_get


class PreferencesInvalid(FieldInvalid):
    """A preference that cannot be saved: ``field`` names it."""


@transaction.atomic
def user_time_zone_set(*, user: User, time_zone: str) -> UserPreferences:
    """Show ``user`` times in ``time_zone`` (an IANA name), or in their browser's zone when it
    is empty. Raises ``PreferencesInvalid`` for an unknown zone; then nothing is written."""
    time_zone = (time_zone or "").strip()
    if time_zone and zone_get(time_zone) is None:
        raise PreferencesInvalid(field="time_zone", message=f"unknown time zone {time_zone!r}")
    row, _created = UserPreferences.objects.update_or_create(
        user=user, defaults={"time_zone": time_zone}
    )
    return row
