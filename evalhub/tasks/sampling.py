"""Deterministic sampling: an item is in a sample by a hash of its id alone, so a 10 % sample
is the same on every run and lies inside the 20 % sample."""

from __future__ import annotations

import hashlib


def sample_point(key: str) -> float:
    """Where ``key`` (a span, trace or session id) falls in [0, 1)."""
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def in_sample(key: str, rate_percent: float) -> bool:
    """Whether ``key`` is in a ``rate_percent`` (0 to 100) sample."""
    if rate_percent >= 100:
        return True
    if rate_percent <= 0:
        return False
    return sample_point(key) < rate_percent / 100.0
