"""The form that starts a shadow: which of the task's evaluators, and the candidate — an
alignment run's draft, or a definition in JSON."""

from __future__ import annotations

import json
from typing import Any

from django import forms

from evalhub.alignment.models import AlignmentRun, AlignmentStatus
from evalhub.core.forms import form_field
from evalhub.evaluators.models import Evaluator
from evalhub.tasks.models import Task


class _AlignmentRunChoice(forms.ModelChoiceField):
    def label_from_instance(self, obj: AlignmentRun) -> str:
        return f"{obj.evaluator.name}: alignment run #{obj.pk}"


class ShadowStartForm(forms.Form):
    evaluator = forms.ModelChoiceField(
        queryset=Evaluator.objects.none(), label="Evaluator", empty_label=None
    )
    alignment_run = _AlignmentRunChoice(
        queryset=AlignmentRun.objects.none(),
        required=False,
        label="Candidate from an alignment run",
        help_text="Its draft runs as the candidate.",
    )
    candidate = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 8, "class": "mono"}),
        label="…or the candidate definition (JSON)",
    )

    def __init__(self, *args: Any, task: Task, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        evaluators = Evaluator.objects.filter(task_evaluators__task=task).order_by("name")
        form_field(self, "evaluator", forms.ModelChoiceField).queryset = evaluators
        form_field(self, "alignment_run", forms.ModelChoiceField).queryset = (
            AlignmentRun.objects.filter(evaluator__in=evaluators, status=AlignmentStatus.COMPLETED)
            .select_related("evaluator")
            .order_by("-created_at", "-id")
        )

    def clean_candidate(self) -> dict[str, Any] | None:
        text = self.cleaned_data["candidate"].strip()
        if not text:
            return None
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(f"not JSON: {exc.msg} (line {exc.lineno})") from exc
        if not isinstance(value, dict):
            raise forms.ValidationError("an object: the evaluator's definition")
        return value
