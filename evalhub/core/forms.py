"""Typed access to a form's fields: ``form.fields`` maps names to ``Field``, while the code that
sets a field's choices or queryset knows which kind of field it declared."""

from __future__ import annotations

from django import forms


def form_field[F: forms.Field](form: forms.BaseForm, name: str, kind: type[F]) -> F:
    """The field ``name`` of ``form``, which is a ``kind`` (a ``TypeError`` when it is not: the
    form and the code that reads it disagree)."""
    field = form.fields[name]
    if not isinstance(field, kind):
        raise TypeError(
            f"{type(form).__name__}.{name} is a {type(field).__name__}, not a {kind.__name__}"
        )
    return field
