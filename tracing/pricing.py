"""Cost from the model price table, cached briefly per process so admin edits apply soon."""

from __future__ import annotations

import time
from decimal import Decimal

from tracing.models import ModelPrice

_CACHE_SECONDS = 30.0
_cache: tuple[float, list[tuple[str, Decimal, Decimal]]] | None = None


def _prices() -> list[tuple[str, Decimal, Decimal]]:
    global _cache
    now = time.monotonic()
    if _cache is None or now - _cache[0] > _CACHE_SECONDS:
        rows = ModelPrice.objects.values_list(
            "model_prefix", "prompt_per_million", "completion_per_million"
        )
        prices = sorted(((p.lower(), a, b) for p, a, b in rows), key=lambda r: -len(r[0]))
        _cache = (now, prices)
    return _cache[1]


def price_cache_clear() -> None:
    global _cache
    _cache = None


def cost_of(
    model_name: str, prompt_tokens: int | None, completion_tokens: int | None
) -> float | None:
    """Dollars for one call, by the longest matching model prefix; None when unpriced."""
    if not model_name or (prompt_tokens is None and completion_tokens is None):
        return None
    name = model_name.lower()
    # Provider-qualified names ("openai/gpt-4o") match on their last part too.
    candidates = (name, name.rsplit("/", 1)[-1])
    for prefix, prompt_pm, completion_pm in _prices():
        if any(candidate.startswith(prefix) for candidate in candidates):
            cost = (Decimal(prompt_tokens or 0) * prompt_pm) + (
                Decimal(completion_tokens or 0) * completion_pm
            )
            return float(cost / Decimal(1_000_000))
    return None
