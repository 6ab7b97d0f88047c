"""Forms of the annotation pages: rubrics (annotation configs), the annotate form, the
Annotations tab's filters.

Forms parse and check the shape of what was posted; the rules (distinct labels, bounds, a label
that is one of the rubric's values…) are the services', whose errors the forms show on the
field they name.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from django import forms
from django.http import QueryDict

from annotations.models import (
    AnnotationConfig,
    AnnotationConfigKind,
    AnnotationSource,
    AnnotatorKind,
    OptimizationDirection,
    TargetKind,
)
from annotations.rubrics.services import AnnotationConfigInvalid
from annotations.store.selectors import (
    ANNOTATION_SORTS,
    DEFAULT_ANNOTATION_SORT,
    AnnotationFilters,
)
from annotations.store.services import AnnotationInputError
from tracing.models import Project

BLANK_VALUE_ROWS = 2  # empty label rows offered below a categorical rubric's values


@dataclass(frozen=True, slots=True)
class ValueRow:
    """A categorical value as typed (kept as text so a bad score can be shown back)."""

    label: str
    score: str


def _score_text(score: float | None) -> str:
    return "" if score is None else f"{score:g}"


class AnnotationConfigForm(forms.Form):
    """A rubric and the projects it is enabled for. Categorical values come as repeated
    ``value_label`` / ``value_score`` fields (one pair a row; empty rows are skipped)."""

    name = forms.CharField(max_length=255)
    kind = forms.ChoiceField(
        choices=[
            (AnnotationConfigKind.CATEGORICAL, "Categorical: pick one of a few labels"),
            (AnnotationConfigKind.CONTINUOUS, "Continuous: a number, optionally within bounds"),
            (AnnotationConfigKind.FREEFORM, "Freeform: free text"),
        ],
        widget=forms.RadioSelect,
        initial=AnnotationConfigKind.CATEGORICAL,
        label="Type",
    )
    description = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2}), help_text="Shown to annotators."
    )
    optimization_direction = forms.ChoiceField(
        choices=[
            (OptimizationDirection.NONE, "None"),
            (OptimizationDirection.MAXIMIZE, "Maximize (higher scores are better)"),
            (OptimizationDirection.MINIMIZE, "Minimize (lower scores are better)"),
        ],
        initial=OptimizationDirection.NONE,
        label="Optimization direction",
    )
    lower_bound = forms.FloatField(required=False, label="Lower bound")
    upper_bound = forms.FloatField(required=False, label="Upper bound")
    projects = forms.ModelMultipleChoiceField(
        queryset=Project.objects.order_by("name"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Enabled for projects",
    )

    def __init__(
        self, data: QueryDict | None = None, *, config: AnnotationConfig | None = None
    ) -> None:
        initial: dict[str, Any] = {}
        rows: list[ValueRow] = []
        if config is not None:
            initial = {
                "name": config.name,
                "kind": config.kind,
                "description": config.description,
                "optimization_direction": config.optimization_direction,
                "lower_bound": config.lower_bound,
                "upper_bound": config.upper_bound,
                "projects": list(config.projects.all()),
            }
            rows = [ValueRow(v["label"], _score_text(v.get("score"))) for v in config.values]
        super().__init__(data, initial=initial)
        if data is not None:
            labels, scores = data.getlist("value_label"), data.getlist("value_score")
            rows = [
                ValueRow(label, scores[i] if i < len(scores) else "")
                for i, label in enumerate(labels)
            ]
        self.value_rows = [row for row in rows if row.label.strip() or row.score.strip()]
        self.value_errors: list[str] = []

    @property
    def rows_shown(self) -> list[ValueRow]:
        """The values, then a few empty rows to add more."""
        return [*self.value_rows, *[ValueRow("", "")] * BLANK_VALUE_ROWS]

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        values = []
        if data.get("kind") == AnnotationConfigKind.CATEGORICAL:
            for number, row in enumerate(self.value_rows, start=1):
                score: float | None = None
                if row.score.strip():
                    try:
                        score = float(row.score)
                    except ValueError:
                        score = math.nan
                    if not math.isfinite(score):
                        self.value_errors.append(f"Value {number}: the score must be a number.")
                        continue
                values.append({"label": row.label, "score": score})
        data["values"] = values
        if self.value_errors:
            raise forms.ValidationError("Some values need fixing (see below).")
        return data

    def service_fields(self) -> dict[str, Any]:
        """The cleaned rubric as ``annotation_config_save`` takes it: values only for a
        categorical rubric, bounds only for a continuous one."""
        data = self.cleaned_data
        kind = data["kind"]
        continuous = kind == AnnotationConfigKind.CONTINUOUS
        return {
            "name": data["name"],
            "kind": kind,
            "description": data["description"],
            "optimization_direction": data["optimization_direction"],
            "values": data["values"] if kind == AnnotationConfigKind.CATEGORICAL else None,
            "lower_bound": data["lower_bound"] if continuous else None,
            "upper_bound": data["upper_bound"] if continuous else None,
            "projects": list(data["projects"]),
        }

    def add_service_error(self, error: AnnotationConfigInvalid) -> None:
        """Show the service's complaint on the field it names."""
        field = {"type": "kind"}.get(error.field, error.field)
        if field.startswith("values"):
            self.value_errors.append(_value_message(error.field, error.message))
            self.add_error(None, "Some values need fixing (see below).")
        elif field in self.fields:
            self.add_error(field, error.message)
        else:
            self.add_error(None, str(error))


def _value_message(field: str, message: str) -> str:
    """``values[1].label`` → "Value 2 label: …"."""
    head, _, rest = field.partition("]")
    if head.startswith("values[") and head[7:].isdigit():
        part = rest.lstrip(".")
        return f"Value {int(head[7:]) + 1}{' ' + part if part else ''}: {message}."
    return f"Values: {message}."


class AnnotateForm(forms.Form):
    """One rubric's part of the annotate form: a label (categorical), a score (continuous) or
    text (freeform, in ``explanation``), with notes in ``explanation``; or a delete."""

    name = forms.CharField(max_length=255)
    action = forms.ChoiceField(choices=[("save", "Save"), ("delete", "Remove")], required=False)
    label = forms.CharField(max_length=255, required=False, strip=False)
    score = forms.FloatField(required=False)
    explanation = forms.CharField(required=False, max_length=20_000)

    @property
    def deleting(self) -> bool:
        return self.cleaned_data.get("action") == "delete"

    def add_service_error(self, error: AnnotationInputError) -> None:
        field = error.field if error.field in self.fields else None
        self.add_error(field, error.message)

    def messages(self) -> list[str]:
        """Every error as a sentence, for the rubric's row."""
        out = []
        for field, errors in self.errors.items():
            for message in errors:
                out.append(
                    str(message) if field == "__all__" else f"{field.capitalize()}: {message}"
                )
        return out


class AnnotationFilterForm(forms.Form):
    """The Annotations tab's filters, sort and page (all in the URL). A value that does not
    validate is shown as an error and not applied."""

    q = forms.CharField(required=False, max_length=500, label="Search")
    name = forms.CharField(required=False, max_length=255, label="Name")
    kind = forms.ChoiceField(
        choices=[("", "Any"), *AnnotatorKind.choices], required=False, label="Annotator"
    )
    source = forms.ChoiceField(
        choices=[("", "Any"), *AnnotationSource.choices], required=False, label="Source"
    )
    author = forms.CharField(required=False, max_length=255, label="Author")
    target = forms.ChoiceField(
        choices=[("", "Any"), *TargetKind.choices], required=False, label="Target"
    )
    sort = forms.ChoiceField(
        choices=[(key, label) for key, (label, _) in ANNOTATION_SORTS.items()],
        required=False,
        label="Sort",
    )
    page = forms.IntegerField(required=False, min_value=1, max_value=100_000)

    def _value(self, field: str) -> Any:
        self.is_valid()
        return getattr(self, "cleaned_data", {}).get(field) if field not in self.errors else None

    def filters(self) -> AnnotationFilters:
        return AnnotationFilters(
            name=(self._value("name") or "").strip(),
            annotator_kind=self._value("kind") or "",
            source=self._value("source") or "",
            author=(self._value("author") or "").strip(),
            target_kind=self._value("target") or "",
            q=(self._value("q") or "").strip(),
        )

    def sort_key(self) -> str:
        return self._value("sort") or DEFAULT_ANNOTATION_SORT

    def page_number(self) -> int:
        return self._value("page") or 1


class AgreementForm(forms.Form):
    name = forms.CharField(required=False, max_length=255, label="Name")
