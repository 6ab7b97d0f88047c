"""The forms of the Monitors, Notification channels and Automations pages: fields as people
type them (durations like ``15m``), turned into the services' inputs, whose errors come back
onto the field they name."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any, Final

from django import forms

from annotations.datasets.models import Dataset
from annotations.queues.models import LabelingQueue
from evalhub.monitors.automations import AutomationInput
from evalhub.monitors.channels import ChannelInput
from evalhub.monitors.models import (
    ActionKind,
    ChannelKind,
    Condition,
    Direction,
    Metric,
    NotificationChannel,
)
from evalhub.monitors.services import BASELINE_OFFSETS, MonitorInput
from tracing.models import Project

_DURATION: Final = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$", re.IGNORECASE)
_UNITS: Final = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def duration_seconds(text: str) -> int | None:
    """``"15m"``, ``"1h"``, ``"7d"``, ``"300"`` (seconds) → seconds; None when blank."""
    if not text or not text.strip():
        return None
    match = _DURATION.match(text)
    if match is None:
        raise forms.ValidationError("a duration such as 15m, 1h or 7d")
    return round(float(match.group(1)) * _UNITS[match.group(2).lower()])


def duration_text(seconds: int) -> str:
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


class DurationField(forms.Field):
    """A duration typed as ``15m``, ``1h``, ``7d`` or seconds; cleans to whole seconds."""

    widget = forms.TextInput

    def to_python(self, value: Any) -> int | None:
        text = str(value or "").strip()
        if len(text) > 20:
            raise forms.ValidationError("a duration such as 15m, 1h or 7d")
        return duration_seconds(text)

    def prepare_value(self, value: Any) -> Any:
        return duration_text(value) if isinstance(value, int) else value


# Where a service's field name is not the form's (``evalhub.core.fields.form_error``'s ``fields``).
FORM_FIELDS: Final = {
    "window_seconds": "window",
    "frequency_seconds": "frequency",
    "delay_seconds": "delay",
    "baseline_offset_seconds": "baseline_offset",
    "until": "mute_hours",
}


class MonitorForm(forms.Form):
    project = forms.ChoiceField(choices=())
    name = forms.CharField(max_length=200)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    metric = forms.ChoiceField(choices=Metric.choices)
    result_name = forms.CharField(
        required=False, label="Evaluation or annotation name", help_text="e.g. correctness"
    )
    label = forms.CharField(required=False, label="Label counted", help_text="e.g. incorrect")
    filter = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "class": "mono"}),
        help_text="The filter language, e.g. span_kind = 'LLM' and metadata.tier = 'enterprise'",
    )
    window = DurationField(initial="1h", help_text="5m to 7d")
    frequency = DurationField(initial="5m", label="Check every")
    delay = DurationField(initial="1m", required=False, label="Wait for late results")
    condition = forms.ChoiceField(choices=Condition.choices)
    direction = forms.ChoiceField(choices=Direction.choices, label="Fire when the value")
    threshold = forms.FloatField(required=False, help_text="Rates from 0 to 1 (0.25 = 25 %)")
    consecutive = forms.IntegerField(initial=3, label="For consecutive windows")
    baseline_offset = forms.TypedChoiceField(
        choices=[(str(k), v) for k, v in BASELINE_OFFSETS.items()],
        coerce=int,
        initial="86400",
        label="Baseline",
    )
    significance = forms.FloatField(initial=0.05, required=False)
    min_effect = forms.FloatField(initial=0.05, required=False, label="Minimum effect")
    min_samples = forms.IntegerField(initial=30, label="Minimum results")
    segment_field = forms.CharField(
        required=False, label="Segment by", help_text="e.g. model_name or metadata.tier"
    )
    channels = forms.ModelMultipleChoiceField(
        queryset=NotificationChannel.objects.all(), required=False, to_field_name="name"
    )
    enabled = forms.BooleanField(required=False, initial=True)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        project = self.fields["project"]
        assert isinstance(project, forms.ChoiceField)
        project.choices = [(name, name) for name in Project.objects.values_list("name", flat=True)]

    def monitor_input(self) -> MonitorInput:
        data = self.cleaned_data
        return MonitorInput(
            name=data["name"],
            description=data.get("description") or "",
            metric=data["metric"],
            result_name=data.get("result_name") or "",
            label=data.get("label") or "",
            filter=data.get("filter") or "",
            window_seconds=data.get("window") or 0,
            frequency_seconds=data.get("frequency") or 0,
            delay_seconds=data.get("delay") or 0,
            condition=data["condition"],
            direction=data["direction"],
            threshold=data.get("threshold"),
            consecutive=data.get("consecutive") or 0,
            baseline_offset_seconds=data.get("baseline_offset") or 86400,
            significance=data["significance"] if data.get("significance") is not None else 0.05,
            min_effect=data.get("min_effect") or 0.0,
            min_samples=data.get("min_samples") or 0,
            segment_field=data.get("segment_field") or "",
            channels=list(data.get("channels") or []),
            enabled=bool(data.get("enabled")),
        )

    @staticmethod
    def initial_of(monitor: Any) -> dict[str, Any]:
        return {
            "project": monitor.project.name,
            "name": monitor.name,
            "description": monitor.description,
            "metric": monitor.metric,
            "result_name": monitor.result_name,
            "label": monitor.label,
            "filter": monitor.filter,
            "window": duration_text(monitor.window_seconds),
            "frequency": duration_text(monitor.frequency_seconds),
            "delay": duration_text(monitor.delay_seconds) if monitor.delay_seconds else "0s",
            "condition": monitor.condition,
            "direction": monitor.direction,
            "threshold": monitor.threshold,
            "consecutive": monitor.consecutive,
            "baseline_offset": str(monitor.baseline_offset_seconds),
            "significance": monitor.significance,
            "min_effect": monitor.min_effect,
            "min_samples": monitor.min_samples,
            "segment_field": monitor.segment_field,
            "channels": [c.name for c in monitor.channels.all()],
            "enabled": monitor.enabled,
        }


class MuteForm(forms.Form):
    mute_hours = forms.FloatField(
        required=False, min_value=0, max_value=24 * 90, label="Mute for (hours, 0 unmutes)"
    )


class ChannelForm(forms.Form):
    name = forms.CharField(max_length=200)
    kind = forms.ChoiceField(choices=ChannelKind.choices)
    url = forms.CharField(required=False, max_length=2000, label="URL")
    secret = forms.CharField(
        required=False,
        max_length=200,
        help_text="Webhooks: the HMAC-SHA256 key; blank makes (or keeps) one",
    )
    emails = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2}), help_text="One address a line"
    )
    enabled = forms.BooleanField(required=False, initial=True)

    def channel_input(self) -> ChannelInput:
        return ChannelInput(**self.cleaned_data)


class AutomationForm(forms.Form):
    name = forms.CharField(max_length=200)
    filter = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2, "class": "mono"}),
        help_text="e.g. eval.hallucination.label = 'hallucinated' AND metadata.tier = 'enterprise'",
    )
    action = forms.ChoiceField(choices=ActionKind.choices)
    queue = forms.ModelChoiceField(
        queryset=LabelingQueue.objects.all(), required=False, to_field_name="name"
    )
    dataset = forms.ModelChoiceField(
        queryset=Dataset.objects.all(), required=False, to_field_name="name"
    )
    dataset_source = forms.ChoiceField(
        choices=[("span", "the span"), ("trace", "its trace")], initial="span", required=False
    )
    expected_output_from = forms.CharField(
        required=False, label="Expected output from the annotation", max_length=255
    )
    tag = forms.CharField(required=False, max_length=200)
    channel = forms.ModelChoiceField(
        queryset=NotificationChannel.objects.exclude(kind=ChannelKind.EMAIL),
        required=False,
        to_field_name="name",
    )
    sampling_rate = forms.FloatField(initial=100, label="Sampling (%)")
    daily_cap = forms.IntegerField(required=False, label="At most a day")
    enabled = forms.BooleanField(required=False, initial=True)

    def automation_input(self) -> AutomationInput:
        data = self.cleaned_data
        return AutomationInput(
            name=data["name"],
            filter=data["filter"],
            action=data["action"],
            queue=data.get("queue"),
            dataset=data.get("dataset"),
            dataset_source=data.get("dataset_source") or "span",
            expected_output_from=data.get("expected_output_from") or "",
            tag=data.get("tag") or "",
            channel=data.get("channel"),
            sampling_rate=data["sampling_rate"],
            daily_cap=data.get("daily_cap"),
            enabled=bool(data.get("enabled")),
        )


def mute_until(hours: float | None) -> timedelta | None:
    return timedelta(hours=hours) if hours else None
