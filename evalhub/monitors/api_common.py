"""What the monitors' API modules share: strict input schemas and the shapes of a refusal."""

from __future__ import annotations

from datetime import datetime

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


def when(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


__all__ = ["Strict", "invalid", "taken", "when"]
