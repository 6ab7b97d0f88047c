from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, User

from evalhub.preferences.models import UserPreferences


def user_time_zone(*, user: User | AnonymousUser) -> str:
    """The zone ``user`` chose, or ``""`` when they follow their browser's."""
    if not user.is_authenticated:
        return ""
    row = UserPreferences.objects.filter(user=user).values_list("time_zone", flat=True).first()
    return row or ""
