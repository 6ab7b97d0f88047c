"""The one place that reads the environment. A bad value fails loudly at start-up."""

from __future__ import annotations

import os
from datetime import date
from typing import overload

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@overload
def env_str(name: str, default: str) -> str: ...
@overload
def env_str(name: str, default: None = None) -> str | None: ...
def env_str(name: str, default: str | None = None) -> str | None:
    """The variable's value; ``default`` when it is unset or empty."""
    value = os.environ.get(name)
    return default if value is None or value == "" else value


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean (use 1/0, true/false, yes/no)")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    try:
        number = int(value.strip())
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not an integer") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name}={number} must be at least {minimum}")
    return number


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def env_size(name: str, default: int) -> int:
    """A byte size: a plain integer or one with a K/M/G (binary) suffix, e.g. ``32M``."""
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    text = value.strip().upper().removesuffix("B").removesuffix("I")
    factor = 1
    for suffix, multiplier in (("K", 1024), ("M", 1024**2), ("G", 1024**3)):
        if text.endswith(suffix):
            factor, text = multiplier, text[:-1]
            break
    try:
        number = int(text) * factor
    except ValueError:
        raise ImproperlyConfigured(
            f"{name}={value!r} is not a size (e.g. 33554432 or 32M)"
        ) from None
    if number <= 0:
        raise ImproperlyConfigured(f"{name}={value!r} must be positive")
    return number


def env_date(name: str, default: date) -> date:
    """A calendar date in ISO form, e.g. ``2000-01-01``."""
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a date (use YYYY-MM-DD)") from None
