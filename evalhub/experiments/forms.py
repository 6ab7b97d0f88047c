"""The prompt-experiment form: a dataset version, a prompt (an existing version, or a new
template written here), a provider and model, and how template variables map to example
fields (one ``variable = input.key`` per line)."""

from __future__ import annotations

from typing import Any

from django import forms

from annotations.datasets.models import Dataset, DatasetVersion
from evalhub.core.forms import form_field
from evalhub.evaluators.models import Evaluator
from evalhub.experiments.models import PromptVersion
from evalhub.providers.models import Provider


def mapping_parse(text: str) -> dict[str, str]:
    """``question = input.question`` lines → ``{"question": "input.question"}``."""
    mapping = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        name, sep, source = line.partition("=")
        if not sep or not name.strip() or not source.strip():
            raise forms.ValidationError(f"line {number}: write it as variable = input.key")
        mapping[name.strip()] = source.strip()
    return mapping


class _PromptVersionChoice(forms.ModelChoiceField):
    def label_from_instance(self, obj: PromptVersion) -> str:
        return f"{obj.prompt.name} · version {obj.pk} · {obj.model_name}"


class PromptExperimentForm(forms.Form):
    version = forms.ModelChoiceField(
        queryset=DatasetVersion.objects.none(), label="Dataset version", empty_label=None
    )
    prompt_version = _PromptVersionChoice(
        queryset=PromptVersion.objects.none(),
        required=False,
        label="Prompt",
        empty_label="— a new prompt, written below —",
    )
    prompt_name = forms.CharField(required=False, max_length=255, label="New prompt's name")
    system = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    template = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="The user message; {{variable}} marks a value from the example.",
    )
    provider = forms.ModelChoiceField(queryset=Provider.objects.none(), empty_label=None)
    model = forms.CharField(required=False, max_length=200, help_text="Default: the prompt's")
    variables = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="One per line: variable = input.key (or expected.key, metadata.key); "
        "a variable not listed reads input.<variable>.",
    )
    name = forms.CharField(required=False, max_length=255, label="Experiment name")
    repetitions = forms.IntegerField(min_value=1, max_value=20, initial=1)
    concurrency = forms.IntegerField(min_value=1, max_value=64, initial=8)

    def __init__(self, *args: Any, dataset: Dataset, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        form_field(
            self, "version", forms.ModelChoiceField
        ).queryset = DatasetVersion.objects.filter(
            dataset=dataset, deleted_at__isnull=True
        ).order_by("-id")
        form_field(
            self, "prompt_version", forms.ModelChoiceField
        ).queryset = PromptVersion.objects.select_related("prompt").order_by("prompt__name", "-id")
        form_field(self, "provider", forms.ModelChoiceField).queryset = Provider.objects.order_by(
            "name"
        )

    def clean_variables(self) -> dict[str, str]:
        return mapping_parse(self.cleaned_data.get("variables") or "")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("prompt_version") is None:
            if not (data.get("template") or "").strip():
                self.add_error("template", "Write a template, or choose a prompt.")
            if not (data.get("prompt_name") or "").strip():
                self.add_error("prompt_name", "Name the new prompt.")
        return data


class EvaluateForm(forms.Form):
    evaluator = forms.ModelChoiceField(
        queryset=Evaluator.objects.order_by("name"), empty_label=None
    )


# Where a dataset task's variables may read (``evalhub.experiments.task_target``): the run's
# fields first, then the spans of the run's trace.
RUN_SOURCE_CHOICES: list[tuple[str, str]] = [
    ("input", "the example's input"),
    ("output", "the run's output"),
    ("reference", "the expected output"),
    ("metadata", "the example's metadata"),
]
SPAN_SOURCE_CHOICES: list[tuple[str, str]] = [
    ("trace.trajectory", "the run's trace: every span in order"),
    ("documents", "the run's trace: retrieved documents"),
    ("attributes.llm.input_messages", "the run's trace: the root span's input messages"),
    ("attributes.llm.output_messages", "the run's trace: the root span's output messages"),
    ("name", "the run's trace: the root span's name"),
    ("latency_ms", "the run's trace: the root span's latency"),
    ("model", "the run's trace: the model"),
]
MAP_PREFIX = "map"


class DatasetTaskForm(forms.Form):
    """A task on a dataset: evaluators (with the variable mapping, ``map-<evaluator>-<var>``
    fields), an optional LLM provider and model, and the quiet period of SDK experiments."""

    name = forms.CharField(max_length=200)
    description = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2}), max_length=5000
    )
    evaluators = forms.ModelMultipleChoiceField(
        queryset=Evaluator.objects.order_by("name"), widget=forms.CheckboxSelectMultiple
    )
    provider = forms.ModelChoiceField(
        queryset=Provider.objects.none(), required=False, empty_label="Each evaluator's own"
    )
    model = forms.CharField(required=False, max_length=200)
    quiet_seconds = forms.IntegerField(
        required=False,
        min_value=0,
        max_value=86_400,
        label="Quiet period (seconds)",
        help_text="An SDK experiment is scored once no run arrived for this long (empty: 5 s); "
        "a prompt experiment as soon as it completes.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        form_field(self, "provider", forms.ModelChoiceField).queryset = Provider.objects.order_by(
            "name"
        )

    def mappings(self) -> dict[int, dict[str, str]]:
        """Evaluator pk → the variables posted for it (variable → source, non-empty)."""
        found: dict[int, dict[str, str]] = {}
        for key, value in self.data.items():
            parts = key.split("-", 2)
            if len(parts) == 3 and parts[0] == MAP_PREFIX and parts[1].isdigit():
                source = str(value).strip()
                if source:
                    found.setdefault(int(parts[1]), {})[parts[2]] = source
        return found
