"""What the monitors' API modules share: strict input schemas, a service call's refusals as
answers (``saved``) and their shapes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from ninja import Schema, Status
from pydantic import ConfigDict

from evalhub.core.fields import FieldInvalid, NameTaken


class Strict(Schema):
    """An input schema refusing unknown fields (a 422 naming the field)."""

    model_config = ConfigDict(extra="forbid")


def invalid(exc: FieldInvalid) -> Status:
    return Status(422, {"detail": f"{exc.field}: {exc.message}", "field": exc.field})


def taken(exc: NameTaken) -> Status:
    return Status(409, {"detail": f"name: {exc}", "field": "name"})


def saved[T](save: Callable[[], T], answer: Callable[[T], Any]) -> Any:
    """``answer`` to what ``save`` (a service call) returns; its refusals answer instead: a 422
    naming the field, a 409 for a name another row has."""
    try:
        result = save()
    except FieldInvalid as exc:
        return invalid(exc)
    except NameTaken as exc:
        return taken(exc)
    return answer(result)


def when(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


__all__ = ["Strict", "invalid", "saved", "taken", "when"]
