"""Monitors: what a valid monitor is (``monitor_clean``), creating, changing, muting and
deleting one. Checking a monitor's windows, its state machine and the "would have fired"
preview are ``evalhub.monitors.checks``'s."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from evalhub.core.fields import FieldInvalid, NameTaken, save_named
from evalhub.monitors.metrics import (
    MEAN_METRICS,
    RATE_METRICS,
    RESULT_METRICS,
    segment_expression,
)
from evalhub.monitors.models import (
    Condition,
    Direction,
    EventKind,
    Metric,
    Monitor,
    MonitorEvent,
    NotificationChannel,
)
from tracing.models import Project
from tracing.query import FilterError, compile_filter

MAX_WINDOW_SECONDS: Final = 7 * 86400
MAX_CONSECUTIVE: Final = 100
BASELINE_OFFSETS: Final = {86400: "the previous day", 7 * 86400: "the previous week"}


class MonitorInvalid(FieldInvalid):
    """A monitor that cannot be stored; ``field`` names the input."""


class MonitorNameTaken(NameTaken):
    noun = "monitor"


@dataclass
class MonitorInput:
    """What a person or the API gives for a monitor (the form and the API share it)."""

    name: str
    metric: str
    condition: str
    filter: str = ""
    result_name: str = ""
    label: str = ""
    description: str = ""
    window_seconds: int = 3600
    frequency_seconds: int = 300
    delay_seconds: int = 60
    direction: str = Direction.ABOVE
    threshold: float | None = None
    consecutive: int = 1
    baseline_offset_seconds: int = 86400
    significance: float = 0.05
    min_effect: float = 0.0
    min_samples: int = 30
    segment_field: str = ""
    channels: list[NotificationChannel] = field(default_factory=list)
    enabled: bool = True


def _invalid(field_name: str, message: str) -> MonitorInvalid:
    return MonitorInvalid(field=field_name, message=message)


def _integer(name: str, value: Any, low: int, high: int, unit: str = "") -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _invalid(name, "must be a whole number")
    if value != int(value):
        raise _invalid(name, "must be a whole number")
    if not low <= value <= high:
        raise _invalid(name, f"must be between {low:,} and {high:,}{unit}")
    return int(value)


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _invalid(name, "must be a number")
    return float(value)


def monitor_clean(data: MonitorInput) -> MonitorInput:
    """``data`` checked and normalised; raises ``MonitorInvalid`` naming the first bad field.
    The filter and the segment field are checked by the filter language's compiler."""
    data.name = (data.name or "").strip() if isinstance(data.name, str) else ""
    if not data.name:
        raise _invalid("name", "must not be empty")
    if len(data.name) > 200:
        raise _invalid("name", "is longer than 200 characters")
    if data.metric not in Metric.values:
        raise _invalid("metric", f"must be one of {', '.join(Metric.values)}")
    if data.condition not in Condition.values:
        raise _invalid("condition", f"must be one of {', '.join(Condition.values)}")
    if data.direction not in Direction.values:
        raise _invalid("direction", f"must be one of {', '.join(Direction.values)}")
    data.result_name = (data.result_name or "").strip()
    data.label = (data.label or "").strip()
    if data.metric in RESULT_METRICS and not data.result_name:
        raise _invalid("result_name", "name the evaluation or annotation to watch")
    if data.metric in ("eval_label_rate", "annotation_label_rate") and not data.label:
        raise _invalid("label", "name the label whose share is watched")
    data.filter = (data.filter or "").strip()
    try:
        compile_filter(data.filter)
    except FilterError as exc:
        raise _invalid("filter", str(exc)) from None
    data.segment_field = (data.segment_field or "").strip()
    if data.segment_field:
        try:
            segment_expression(data.segment_field)
        except FilterError as exc:
            raise _invalid("segment_field", str(exc)) from None
    minimum = int(settings.EVALHUB_MONITOR_MIN_WINDOW_SECONDS)
    if data.window_seconds in (None, "", 0):
        raise _invalid("window_seconds", "must not be empty")
    data.window_seconds = _integer(
        "window_seconds", data.window_seconds, minimum, MAX_WINDOW_SECONDS, " seconds"
    )
    data.frequency_seconds = _integer(
        "frequency_seconds", data.frequency_seconds, minimum, MAX_WINDOW_SECONDS, " seconds"
    )
    data.delay_seconds = _integer("delay_seconds", data.delay_seconds, 0, 86400, " seconds")
    data.min_samples = _integer("min_samples", data.min_samples, 1, 10**9)
    if data.condition == Condition.THRESHOLD:
        if data.threshold is None:
            raise _invalid("threshold", "a threshold condition needs a threshold")
        data.threshold = _number("threshold", data.threshold)
        if data.metric in RATE_METRICS and not 0.0 <= data.threshold <= 1.0:
            raise _invalid("threshold", "a rate is between 0 and 1 (0.25 is 25 %)")
        if data.metric not in MEAN_METRICS and data.threshold < 0:
            raise _invalid("threshold", "must not be negative for this metric")
        data.consecutive = _integer("consecutive", data.consecutive, 1, MAX_CONSECUTIVE)
    else:
        if data.metric not in RATE_METRICS | MEAN_METRICS:
            raise _invalid("condition", "a baseline comparison needs a rate or a mean score metric")
        if data.baseline_offset_seconds not in BASELINE_OFFSETS:
            raise _invalid(
                "baseline_offset_seconds", "must be 86400 (previous day) or 604800 (previous week)"
            )
        data.significance = _number("significance", data.significance)
        if not 0.0 < data.significance < 0.5:
            raise _invalid("significance", "must be between 0 and 0.5 (e.g. 0.05)")
        data.min_effect = _number("min_effect", data.min_effect)
        if data.min_effect < 0:
            raise _invalid("min_effect", "must not be negative")
        data.threshold = None
        data.consecutive = _integer("consecutive", data.consecutive, 1, MAX_CONSECUTIVE)
    return data


MONITOR_FIELDS: Final = (
    "name", "metric", "condition", "filter", "result_name", "label", "description",
    "window_seconds", "frequency_seconds", "delay_seconds", "direction", "threshold",
    "consecutive", "baseline_offset_seconds", "significance", "min_effect", "min_samples",
    "segment_field", "enabled",
)  # fmt: skip


@transaction.atomic
def monitor_create(*, project: Project, data: MonitorInput) -> Monitor:
    """Create a monitor; it checks the windows that close from now on."""
    data = monitor_clean(data)
    if Monitor.objects.filter(project=project, name=data.name).exists():
        raise MonitorNameTaken(data.name)
    monitor = Monitor(project=project, **{name: getattr(data, name) for name in MONITOR_FIELDS})
    save_named(monitor, taken=MonitorNameTaken)
    monitor.channels.set(data.channels)
    return monitor


@transaction.atomic
def monitor_update(*, monitor: Monitor, data: MonitorInput) -> Monitor:
    """Change a monitor. Its checks so far stay; a changed metric starts a fresh streak."""
    data = monitor_clean(data)
    if Monitor.objects.filter(project=monitor.project, name=data.name).exclude(pk=monitor.pk):
        raise MonitorNameTaken(data.name)
    for name in MONITOR_FIELDS:
        setattr(monitor, name, getattr(data, name))
    monitor.updated_at = timezone.now()
    save_named(monitor, taken=MonitorNameTaken)
    monitor.channels.set(data.channels)
    return monitor


@transaction.atomic
def monitor_delete(*, monitor: Monitor) -> None:
    monitor.delete()


@transaction.atomic
def monitor_mute(*, monitor: Monitor, until: datetime | None) -> Monitor:
    """Mute alerts until ``until`` (``None`` unmutes). Checks go on; nothing is sent."""
    now = timezone.now()
    if until is not None and until <= now:
        raise _invalid("until", "must be in the future")
    monitor = Monitor.objects.select_for_update().get(pk=monitor.pk)
    monitor.muted_until = until
    monitor.save(update_fields=["muted_until"])
    MonitorEvent.objects.create(
        monitor=monitor,
        kind=EventKind.MUTED if until else EventKind.UNMUTED,
        message=f"muted until {until.isoformat()}" if until else "unmuted",
    )
    return monitor


def channels_by_name(
    names: Iterable[str], *, field_name: str = "channels"
) -> list[NotificationChannel]:
    """The channels named ``names``; ``MonitorInvalid`` lists the unknown ones."""
    wanted = list(dict.fromkeys(names))
    found = {c.name: c for c in NotificationChannel.objects.filter(name__in=wanted)}
    missing = [n for n in wanted if n not in found]
    if missing:
        raise _invalid(field_name, f"no notification channel named {', '.join(map(repr, missing))}")
    return [found[n] for n in wanted]


def monitor_input_from(mapping: Mapping[str, Any], **extra: Any) -> MonitorInput:
    known = {k: v for k, v in mapping.items() if k in MonitorInput.__dataclass_fields__}
    return MonitorInput(**{**known, **extra})
