"""Writes for API keys."""

from __future__ import annotations

import hashlib
import secrets

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from evalhub.models import ApiKey

KEY_PREFIX = "ehk_"


def api_key_hash(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


def api_key_new_secret(key: ApiKey) -> str:
    """Give ``key`` a fresh secret (prefix and hash set, not saved); returns the raw key."""
    raw = KEY_PREFIX + secrets.token_urlsafe(32)
    key.prefix, key.key_hash = raw[:12], api_key_hash(raw)
    return raw


@transaction.atomic
def api_key_create(*, name: str, user: AbstractBaseUser | None = None) -> tuple[ApiKey, str]:
    """Create a key; returns the row and the raw key, which is never stored or shown again."""
    if not name.strip():
        raise ValueError("name must not be empty")
    key = ApiKey(name=name.strip(), user=user)
    raw = api_key_new_secret(key)
    key.save()
    return key, raw


def api_key_mark_used(*, key: ApiKey) -> None:
    ApiKey.objects.filter(pk=key.pk).update(last_used_at=timezone.now())
