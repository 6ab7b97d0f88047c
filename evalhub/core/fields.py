"""The one "this field is wrong" error, and unique names.

A ``FieldInvalid`` becomes a 400 whose JSON ``detail`` starts with the field's name in the API
(one exception handler, ``evalhub.api``) and an error on that field of a form (``form_error``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django import forms
from django.db import IntegrityError, models, transaction


class FieldInvalid(ValueError):
    """Input that cannot be used; ``field`` names what is wrong (API ``detail``, form error)."""

    def __init__(self, *, field: str, message: str) -> None:
        self.field, self.message = field, message
        super().__init__(f"{field}: {message}")


def form_error(
    form: forms.BaseForm, exc: FieldInvalid, *, fields: Mapping[str, str] | None = None
) -> None:
    """Put a service's ``FieldInvalid`` on the form field it names (``fields``: where a
    service's field name is not the form's), else on the form as a whole."""
    name = (fields or {}).get(exc.field, exc.field)
    form.add_error(name if name in form.fields else None, exc.message)


class NameTaken(Exception):
    """Another row of this kind already has this name."""

    noun = "record"

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(
            f"{'an' if self.noun[0] in 'aeiou' else 'a'} {self.noun} named {name!r} already exists"
        )


def name_free(
    model: type[models.Model], name: str, *, pk: int | None, taken: type[NameTaken]
) -> None:
    """Raise ``taken`` when another row of ``model`` (not ``pk``) has ``name``."""
    others = model._default_manager.filter(name=name)
    if pk is not None:
        others = others.exclude(pk=pk)
    if others.exists():
        raise taken(name)


def save_named(instance: models.Model, *, taken: type[NameTaken], **save: Any) -> None:
    """Save a row with a unique ``name`` in a savepoint, so that a concurrent writer's name makes
    this call raise ``taken`` rather than break the caller's transaction."""
    try:
        with transaction.atomic():
            instance.save(**save)
    except IntegrityError:
        raise taken(instance.name) from None  # type: ignore[attr-defined]  # the rows saved here have a unique name
