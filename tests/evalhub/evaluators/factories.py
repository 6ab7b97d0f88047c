"""What a browser posts for the evaluator form as the page shows it (tests' helper)."""

from __future__ import annotations

from django import forms
from django.utils.datastructures import MultiValueDict

from evalhub.evaluators.forms import EvaluatorForm, RowsField


def browser_data(form: EvaluatorForm, **changes: str | list[str]) -> MultiValueDict:
    """The fields of ``form`` as the page renders them, posted the way a browser does
    (textareas with CRLF line ends, unchecked boxes absent, one input per row), then
    ``changes`` (a list sets a repeated field)."""
    data = MultiValueDict()
    for bound in form:
        field, value = bound.field, bound.value()
        if isinstance(field, RowsField):
            rows = form.choice_rows() if bound.name == "choices" else form.variable_rows()
            for row in rows:
                columns = ("label", "score") if bound.name == "choices" else ("name", "source")
                for column in columns:
                    data.appendlist(f"{bound.html_name}-{column}", getattr(row, column))
        elif isinstance(field, forms.BooleanField):
            if value:
                data[bound.html_name] = "on"
        elif isinstance(field, forms.MultipleChoiceField):
            data.setlist(bound.html_name, list(value or []))
        else:
            text = "" if value is None else str(value)
            if isinstance(field.widget, forms.Textarea):
                text = text.replace("\n", "\r\n")
            data[bound.html_name] = text
    for name, value in changes.items():
        if isinstance(value, list):
            data.setlist(name, value)
        else:
            data[name] = value
    return data
