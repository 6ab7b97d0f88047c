"""The task's Calibration page form: calibration sampling and disagreement routing."""

from __future__ import annotations

from typing import Any

from django import forms

from annotations.queues.models import LabelingQueue
from evalhub.core.forms import form_field
from evalhub.evaluators.models import Evaluator
from evalhub.tasks.models import Task


class TaskCalibrationForm(forms.Form):
    """Both settings of a task at once; an unchecked section turns it off."""

    sampling = forms.BooleanField(required=False, label="Send a share of judged items to people")
    rate_percent = forms.FloatField(
        required=False,
        min_value=0.000001,
        max_value=100,
        label="Share (%)",
        help_text="Of the task's judged items, deterministic: the same results choose the same items.",
    )
    stratify = forms.BooleanField(
        required=False, initial=True, label="Stratified by the judge's label"
    )
    queue = forms.ModelChoiceField(queryset=LabelingQueue.objects.none(), required=False)
    evaluator = forms.ModelChoiceField(
        queryset=Evaluator.objects.none(),
        required=False,
        empty_label="The task's first LLM judge",
        label="Judge",
    )
    routing = forms.BooleanField(
        required=False, label="Route disagreements to a review queue as labels arrive"
    )
    review_queue = forms.ModelChoiceField(
        queryset=LabelingQueue.objects.none(), required=False, label="Review queue"
    )
    judge = forms.BooleanField(required=False, initial=True, label="Judge vs person")
    people = forms.BooleanField(required=False, label="Person vs person")

    def __init__(self, *args: Any, task: Task, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        queues = LabelingQueue.objects.filter(item_kind=task.granularity.upper()).order_by("name")
        form_field(self, "queue", forms.ModelChoiceField).queryset = queues
        form_field(self, "review_queue", forms.ModelChoiceField).queryset = queues
        form_field(self, "evaluator", forms.ModelChoiceField).queryset = Evaluator.objects.filter(
            pk__in=task.task_evaluators.values("evaluator")
        ).order_by("name")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("sampling"):
            if data.get("rate_percent") is None and "rate_percent" not in self.errors:
                self.add_error("rate_percent", "Give the share of items to send, e.g. 2.")
            if data.get("queue") is None and "queue" not in self.errors:
                self.add_error("queue", "Choose the labeling queue the items go to.")
        if data.get("routing"):
            if data.get("review_queue") is None and "review_queue" not in self.errors:
                self.add_error("review_queue", "Choose the queue disagreements go to.")
            if not data.get("judge") and not data.get("people"):
                self.add_error("judge", "Choose judge-vs-person or person-vs-person.")
        return data
