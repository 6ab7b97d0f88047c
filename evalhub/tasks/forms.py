"""Forms of the Tasks pages. They parse what the browser sent; the rules (what a valid task or
backfill is) are the services' (``evalhub.tasks.services``, ``evalhub.tasks.backfill``), whose errors come back here as
field errors: ``TaskInvalid.field`` names a field of ``TaskForm``, ``RunRejected.code`` maps to
a field of ``BackfillForm``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django import forms
from django.utils import timezone

from evalhub.evaluators.models import Evaluator
from evalhub.evaluators.selectors import evaluator_list, evaluator_version_latest
from evalhub.providers.selectors import provider_list
from evalhub.tasks.backfill import DEFAULT_MAX_ITEMS, MAX_ITEMS_LIMIT, BackfillInput
from evalhub.tasks.dryrun import default_mapping
from evalhub.tasks.models import Granularity, ItemOutcome, RunStatus
from evalhub.tasks.runs import RunRejected
from evalhub.tasks.services import TaskEvaluatorInput, TaskInput, TaskInvalid
from tracing.browser.filters import DateTimeLocalInput
from tracing.models import Project

MAPPING_PREFIX = "map"


def _project_choices() -> Any:
    return Project.objects.order_by("name")


class TaskForm(forms.Form):
    name = forms.CharField(max_length=200)
    project = forms.ModelChoiceField(
        queryset=_project_choices(), to_field_name="name", empty_label="Choose a project"
    )
    description = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2}), max_length=5000
    )
    evaluators = forms.ModelMultipleChoiceField(
        queryset=evaluator_list(), required=False, widget=forms.CheckboxSelectMultiple
    )
    granularity = forms.ChoiceField(
        choices=Granularity.choices, initial=Granularity.SPAN, widget=forms.RadioSelect
    )
    filter = forms.CharField(
        required=False,
        widget=forms.TextInput(
            attrs={
                "class": "mono",
                "autocomplete": "off",
                "spellcheck": "false",
                "placeholder": "e.g. span_kind = 'LLM' and latency_ms > 1000 (empty: everything)",
            }
        ),
    )
    sampling_rate = forms.FloatField(
        initial=100.0, widget=forms.NumberInput(attrs={"min": 0, "max": 100, "step": "any"})
    )
    continuous = forms.BooleanField(required=False, initial=True, label="Run continuously")
    interval_seconds = forms.IntegerField(
        initial=30, label="Check every (seconds)", widget=forms.NumberInput(attrs={"min": 5})
    )
    backfill = forms.BooleanField(required=False, label="Run a one-time backfill on save")
    quiet_seconds = forms.IntegerField(
        required=False,
        label="Quiet period (seconds)",
        widget=forms.NumberInput(
            attrs={"min": 0, "placeholder": "60 for traces, 600 for sessions"}
        ),
        help_text="A trace or session counts as complete once no span arrived for this long.",
    )
    provider = forms.ModelChoiceField(
        queryset=provider_list(), required=False, empty_label="Each evaluator's own provider"
    )
    model = forms.CharField(
        required=False,
        max_length=200,
        widget=forms.TextInput(attrs={"placeholder": "the evaluator's model or the provider's"}),
    )
    tracing = forms.BooleanField(
        required=False,
        label="Enable tracing",
        help_text="Record every judge call (prompt, answer, tokens, cost, latency, retries) as "
        "an LLM span in the project's judge-traces project; each result links to its call.",
    )
    span = forms.CharField(required=False, max_length=64, widget=forms.HiddenInput)

    def clean_evaluators(self) -> list[Evaluator]:
        """The chosen evaluators in the order they were posted."""
        chosen = {str(e.pk): e for e in self.cleaned_data.get("evaluators") or []}
        order = self.data.getlist("evaluators") if hasattr(self.data, "getlist") else []
        ordered = [chosen[pk] for pk in dict.fromkeys(order) if pk in chosen]
        return ordered + [e for pk, e in chosen.items() if e not in ordered]

    def posted_sources(self, evaluator: Evaluator) -> dict[str, str]:
        """The variable sources posted for ``evaluator`` (variable → source, as typed)."""
        prefix = f"{MAPPING_PREFIX}-{evaluator.pk}-"
        return {
            key[len(prefix) :]: str(value).strip()
            for key, value in self.data.items()
            if key.startswith(prefix)
        }

    def evaluator_entries(self, *, evaluators: list[Evaluator] | None = None) -> list[Any]:
        """The chosen evaluators with the task's mapping: only the variables whose source
        differs from the evaluator's own (an emptied source goes back to the evaluator's)."""
        if evaluators is None:
            evaluators = self.cleaned_data.get("evaluators") or []
        entries = []
        for evaluator in evaluators:
            defaults = default_mapping(evaluator_version_latest(evaluator=evaluator))
            posted = self.posted_sources(evaluator)
            variables = {
                name: source
                for name, source in posted.items()
                if name in defaults and source and source != defaults[name]
            }
            entries.append(TaskEvaluatorInput(evaluator=evaluator, variables=variables))
        return entries

    def task_input(self) -> TaskInput:
        data = self.cleaned_data
        return TaskInput(
            name=data.get("name") or "",
            project=data["project"],
            evaluators=self.evaluator_entries(),
            granularity=data.get("granularity") or Granularity.SPAN,
            filter=data.get("filter") or "",
            sampling_rate=data["sampling_rate"],
            continuous=bool(data.get("continuous")),
            interval_seconds=data["interval_seconds"],
            quiet_seconds=data.get("quiet_seconds"),
            provider=data.get("provider"),
            model=data.get("model") or "",
            tracing=bool(data.get("tracing")),
            description=data.get("description") or "",
        )

    def add_invalid(self, exc: TaskInvalid) -> None:
        """Show a service's ``TaskInvalid`` on the field it names."""
        self.add_error(exc.field if exc.field in self.fields else None, exc.message)


class BackfillForm(forms.Form):
    """A one-time run over spans (traces, sessions) that started in [start, end)."""

    start = forms.DateTimeField(label="From", widget=DateTimeLocalInput())
    end = forms.DateTimeField(
        label="To", required=False, widget=DateTimeLocalInput(), help_text="Empty: now."
    )
    max_items = forms.IntegerField(
        label="At most (items)",
        min_value=1,
        max_value=MAX_ITEMS_LIMIT,
        initial=DEFAULT_MAX_ITEMS,
    )

    # RunRejected codes → the field they are about (others are about the whole form).
    _CODE_FIELDS = {
        "range_in_future": "start",
        "invalid_range": "end",
        "invalid_max_spans": "max_items",
    }

    @staticmethod
    def initial_start(now: datetime | None = None) -> datetime:
        moment = (now or timezone.now()) - timedelta(days=1)
        return moment.replace(second=0, microsecond=0)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        start, end = cleaned.get("start"), cleaned.get("end")
        if start and end and end <= start:
            self.add_error("end", "must be after the start")
        return cleaned

    def backfill_input(self) -> BackfillInput:
        data = self.cleaned_data
        return BackfillInput(start=data["start"], end=data.get("end"), max_items=data["max_items"])

    def add_rejection(self, exc: RunRejected) -> None:
        self.add_error(self._CODE_FIELDS.get(exc.code), exc.message)


class TaskFilterForm(forms.Form):
    """The Tasks page's filter (GET): a project."""

    project = forms.ModelChoiceField(
        queryset=_project_choices(),
        to_field_name="name",
        required=False,
        empty_label="All projects",
    )


class RunFilterForm(forms.Form):
    """The runs tab's filters (GET): a project and a status."""

    project = forms.ModelChoiceField(
        queryset=_project_choices(),
        to_field_name="name",
        required=False,
        empty_label="All projects",
    )
    status = forms.ChoiceField(choices=[("", "Any status"), *RunStatus.choices], required=False)


class RunItemsForm(forms.Form):
    """A run page's items list (GET): an outcome and the keyset cursor. A bad value falls back
    to all items from the first: these come from URLs people share and edit."""

    outcome = forms.ChoiceField(choices=[("", "All"), *ItemOutcome.choices], required=False)
    after = forms.IntegerField(required=False, min_value=0, max_value=2**63 - 1)

    def outcome_after(self) -> tuple[str, int | None]:
        self.is_valid()
        data: dict[str, Any] = getattr(self, "cleaned_data", {})
        return data.get("outcome") or "", data.get("after")
