"""API keys (find, check) and people."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from django.contrib.auth.models import User
from django.db.models import QuerySet
from django.utils import timezone

from evalhub.identity.models import ApiKey
from evalhub.identity.services import api_key_hash, api_key_mark_used

# The last-used time of a key is written at most this often.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def api_key_find(raw_key: str | None) -> ApiKey | None:
    """The key whose secret is ``raw_key`` (live, revoked or expired), with its user; or None."""
    if not raw_key or not raw_key.strip():
        return None
    return (
        ApiKey.objects.filter(key_hash=api_key_hash(raw_key.strip())).select_related("user").first()
    )


def api_key_refusal(key: ApiKey | None, *, now: datetime | None = None) -> str | None:
    """Why ``key`` may not be used (the detail of a 401), or None when it is live."""
    now = now or timezone.now()
    if key is None or key.revoked_at is not None:
        return "invalid or revoked API key (send 'Authorization: Bearer <key>')"
    if key.is_expired(now):
        return f"the API key {key.name!r} expired at {key.expires_at:%Y-%m-%d %H:%M} UTC"
    if key.user is not None and not key.user.is_active:
        return f"the API key {key.name!r} belongs to a deactivated user"
    return None


def api_key_check(raw_key: str | None) -> tuple[ApiKey | None, str | None]:
    """The live key matching ``raw_key`` and None, or None and why no key can be used. Notes a
    key's use at most once a minute (``LAST_USED_RESOLUTION``), so ingest at many requests a
    second does not write the key's row each time."""
    key = api_key_find(raw_key)
    now = timezone.now()
    problem = api_key_refusal(key, now=now)
    if problem is not None or key is None:
        return None, problem or "invalid API key"
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
        api_key_mark_used(key=key, now=now)
    return key, None


def api_key_authenticate(raw_key: str | None) -> ApiKey | None:
    """The live key matching ``raw_key``, or None (see ``api_key_check``)."""
    return api_key_check(raw_key)[0]


def api_key_list(*, user: User | None = None) -> QuerySet[ApiKey]:
    """Keys, newest first, with their users: ``user``'s only, or everyone's (None)."""
    keys = ApiKey.objects.select_related("user", "created_by").order_by("-created_at", "-id")
    return keys if user is None else keys.filter(user=user)


def api_key_from_headers(headers: Mapping[str, str]) -> str | None:
    """The raw key from ``Authorization: Bearer <key>`` or an ``api_key`` header."""
    auth = headers.get("Authorization") or ""
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return headers.get("api_key") or headers.get("api-key") or None


# --- people and their roles ---------------------------------------------------------------------


def user_list() -> list[User]:
    """Everyone, active first then by username, each with its role known without a query."""
    from django.contrib.auth import get_user_model
    from django.db.models import Exists, OuterRef

    from evalhub.identity.roles import ANNOTATOR_GROUP, annotator_known

    user_model = get_user_model()
    in_group = user_model.groups.through.objects.filter(
        user_id=OuterRef("pk"), group__name=ANNOTATOR_GROUP
    )
    users: list[User] = []
    for user in user_model._default_manager.annotate(_in_annotator_group=Exists(in_group)).order_by(
        "-is_active", "username"
    ):
        annotator_known(user, user._in_annotator_group and not user.is_superuser)
        users.append(user)
    return users


def user_get(user_id: int) -> User | None:
    from django.contrib.auth import get_user_model

    return get_user_model()._default_manager.filter(pk=user_id).first()
