"""Forms of the labeling queue pages. They parse input; the rules live in
``annotations.queues.services`` (whose errors the views put back on these forms)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib.auth import get_user_model

from annotations.models import AnnotationConfig, AnnotationConfigKind, TargetKind
from annotations.queues.models import AssignmentMode
from annotations.queues.services import MAX_ITEMS_PER_ADD
from tracing.models import Project


class QueueForm(forms.Form):
    name = forms.CharField(max_length=255)
    instructions = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="What annotators should look for; shown beside every item.",
    )
    item_kind = forms.ChoiceField(
        label="Items are",
        choices=[
            (TargetKind.TRACE, "Traces"),
            (TargetKind.SPAN, "Spans"),
            (TargetKind.SESSION, "Sessions"),
        ],
    )
    configs = forms.ModelMultipleChoiceField(
        label="Rubric",
        queryset=AnnotationConfig.objects.order_by("name"),
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="The annotation configs to fill for each item.",
    )
    assignees = forms.ModelMultipleChoiceField(
        queryset=get_user_model().objects.filter(is_active=True).order_by("username"),
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="Nobody: anyone on the team may label, and one label per item is enough.",
    )
    assignment_mode = forms.ChoiceField(
        label="Assignment",
        choices=AssignmentMode.choices,
        initial=AssignmentMode.ALL,
        widget=forms.RadioSelect,
    )
    hide_machine_results = forms.BooleanField(
        label="Hide machine results until submitted",
        required=False,
        help_text=(
            "Judges' and code evaluators' results on an item stay hidden from the person "
            "labelling it until they submit their own label, so the machine's answer does not "
            "sway theirs (for calibrating a judge against people)."
        ),
    )


class QueueFilterForm(forms.Form):
    project = forms.ModelChoiceField(
        queryset=Project.objects.order_by("name"), to_field_name="name", empty_label=None
    )
    filter = forms.CharField(
        required=False,
        widget=forms.TextInput(
            attrs={
                "class": "mono",
                "placeholder": "span_kind = 'LLM' and latency_ms > 1000",
                "spellcheck": "false",
                "autocomplete": "off",
            }
        ),
        help_text=(
            "The trace browser's filter language, on spans: a trace or session is added when any of "
            "its spans matches (parent_id IS NULL: its root span). Empty: everything."
        ),
    )
    limit = forms.IntegerField(
        label="Cap",
        required=False,
        min_value=1,
        max_value=MAX_ITEMS_PER_ADD,
        help_text=f"At most this many new items (up to {MAX_ITEMS_PER_ADD:,}).",
    )
    sample_percent = forms.FloatField(
        label="Sampling %",
        initial=100,
        max_value=100,
        help_text="Keep each matching item with this probability.",
    )

    def clean_sample_percent(self) -> float:
        value = self.cleaned_data["sample_percent"]
        if value <= 0:
            raise forms.ValidationError("Must be more than 0.")
        return value


@dataclass(frozen=True, slots=True)
class RubricField:
    """One config of the rubric with its form field; ``values`` are (key, label, score) for
    a categorical config, the key being the digit that picks it."""

    config: AnnotationConfig
    field: forms.BoundField
    values: list[tuple[str, str, float | None]]


def _field_name(config: AnnotationConfig) -> str:
    return f"config_{config.pk}"


class LabelForm(forms.Form):
    """The rubric of a queue: a radio group per categorical config, a number per continuous
    one, a text box per free-form one. Required-ness is the service's to say."""

    def __init__(self, *args: Any, configs: Sequence[AnnotationConfig], **kwargs: Any) -> None:
        answers: Mapping[str, Any] = kwargs.pop("answers", {})
        super().__init__(*args, **kwargs)
        self.configs = list(configs)
        for config in self.configs:
            name = _field_name(config)
            help_text = config.description
            if config.kind == AnnotationConfigKind.CATEGORICAL:
                field: forms.Field = forms.ChoiceField(
                    choices=[(v["label"], v["label"]) for v in config.values],
                    widget=forms.RadioSelect,
                    required=False,
                )
            elif config.kind == AnnotationConfigKind.CONTINUOUS:
                field = forms.FloatField(
                    required=False,
                    min_value=config.lower_bound,
                    max_value=config.upper_bound,
                    widget=forms.NumberInput(attrs={"step": "any"}),
                )
            else:
                field = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))
            field.label = config.name
            field.help_text = help_text
            self.fields[name] = field
            if answers.get(config.name) is not None:
                self.initial[name] = answers[config.name]

    @property
    def rubric(self) -> list[RubricField]:
        fields = []
        for config in self.configs:
            values = []
            if config.kind == AnnotationConfigKind.CATEGORICAL:
                values = [
                    (str(index) if index <= 9 else "", v["label"], v.get("score"))
                    for index, v in enumerate(config.values, start=1)
                ]
            fields.append(RubricField(config, self[_field_name(config)], values))
        return fields

    def answers(self) -> dict[str, Any]:
        """The answers by config name (after ``is_valid()``)."""
        return {config.name: self.cleaned_data.get(_field_name(config)) for config in self.configs}

    def add_answer_errors(self, errors: Mapping[str, str]) -> None:
        """Put the service's errors (config name → message) on their fields."""
        by_name = {config.name: _field_name(config) for config in self.configs}
        for name, message in errors.items():
            self.add_error(by_name.get(name), message)
