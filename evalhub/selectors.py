"""Reads for API keys."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

from django.utils import timezone

from evalhub.models import ApiKey
from evalhub.services import api_key_hash, api_key_mark_used


def api_key_authenticate(raw_key: str | None) -> ApiKey | None:
    """The live key matching ``raw_key``, or None. Notes its use at most once a minute."""
    if not raw_key:
        return None
    key = (
        ApiKey.objects.filter(key_hash=api_key_hash(raw_key.strip()), revoked_at__isnull=True)
        .select_related("user")
        .first()
    )
    if key is not None and (
        key.last_used_at is None or timezone.now() - key.last_used_at > timedelta(minutes=1)
    ):
        api_key_mark_used(key=key)
    return key


def api_key_from_headers(headers: Mapping[str, str]) -> str | None:
    """The raw key from ``Authorization: Bearer <key>`` or an ``api_key`` header."""
    auth = headers.get("Authorization") or ""
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return headers.get("api_key") or headers.get("api-key") or None
