"""Cost from the model price table, cached briefly per process so admin edits apply soon."""

from __future__ import annotations

import time
from decimal import Decimal

from tracing.models import ModelPrice

_CACHE_SECONDS = 30.0
_cache: tuple[float, list[tuple[str, Decimal, Decimal]]] | None = None
_by_model: dict[str, tuple[Decimal, Decimal] | None] = {}


def _prices() -> list[tuple[str, Decimal, Decimal]]:
    global _cache
    now = time.monotonic()
    if _cache is None or now - _cache[0] > _CACHE_SECONDS:
        rows = ModelPrice.objects.values_list(
            "model_prefix", "prompt_per_million", "completion_per_million"
        )
        prices = sorted(((p.lower(), a, b) for p, a, b in rows), key=lambda r: -len(r[0]))
        _cache = (now, prices)
        _by_model.clear()
    return _cache[1]


def price_cache_clear() -> None:
    global _cache
    _cache = None
    _by_model.clear()


def _price_of(model_name: str) -> tuple[Decimal, Decimal] | None:
    prices = _prices()
    if model_name in _by_model:
        return _by_model[model_name]
    name = model_name.lower()
    # Provider-qualified names ("openai/gpt-4o") match on their last part too.
    candidates = (name, name.rsplit("/", 1)[-1])
    found = None
    for prefix, prompt_pm, completion_pm in prices:
        if any(candidate.startswith(prefix) for candidate in candidates):
            found = (prompt_pm, completion_pm)
            break
    if len(_by_model) < 10_000:
        _by_model[model_name] = found
    return found


def cost_of(
    model_name: str, prompt_tokens: int | None, completion_tokens: int | None
) -> float | None:
    """Dollars for one call, by the longest matching model prefix; None when unpriced."""
    if not model_name or (prompt_tokens is None and completion_tokens is None):
        return None
    price = _price_of(model_name)
    if price is None:
        return None
    prompt_pm, completion_pm = price
    cost = Decimal(prompt_tokens or 0) * prompt_pm + Decimal(completion_tokens or 0) * completion_pm
    return float(cost / Decimal(1_000_000))
