"""Monitors: what a valid monitor is, checking a monitor's closed windows (one row per window,
so a check delivered twice changes nothing), its state machine OK → firing → resolved with
history, mutes with an expiry, and the alerts' deliveries, enqueued after the commit."""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from evalhub.core.fields import FieldInvalid, NameTaken, save_named
from evalhub.core.jobs import job_send
from evalhub.monitors.channels import DELIVERY_SEND
from evalhub.monitors.metrics import (
    MEAN_METRICS,
    NO_SEGMENT,
    PERCENTILES,
    RATE_METRICS,
    RESULT_METRICS,
    WindowStats,
    filter_reads_metadata,
    metric_window,
    segment_expression,
)
from evalhub.monitors.models import (
    CheckStatus,
    Condition,
    Delivery,
    Direction,
    EventKind,
    Metric,
    Monitor,
    MonitorCheck,
    MonitorEvent,
    MonitorState,
    NotificationChannel,
)
from evalhub.monitors.stats import two_proportion_test, welch_t_test
from tracing.models import Project
from tracing.query import FilterError, compile_filter

MAX_WINDOW_SECONDS: Final = 7 * 86400
MAX_CONSECUTIVE: Final = 100
MAX_WINDOWS_PER_CHECK: Final = 50  # catching up after downtime: at most this many per task
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


_FIELDS: Final = (
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
    monitor = Monitor(project=project, **{name: getattr(data, name) for name in _FIELDS})
    save_named(monitor, taken=MonitorNameTaken)
    monitor.channels.set(data.channels)
    return monitor


@transaction.atomic
def monitor_update(*, monitor: Monitor, data: MonitorInput) -> Monitor:
    """Change a monitor. Its checks so far stay; a changed metric starts a fresh streak."""
    data = monitor_clean(data)
    if Monitor.objects.filter(project=monitor.project, name=data.name).exclude(pk=monitor.pk):
        raise MonitorNameTaken(data.name)
    for name in _FIELDS:
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


# --- windows -------------------------------------------------------------------------------


def window_end_floor(moment: datetime, frequency_seconds: int) -> datetime:
    """The latest window end at or before ``moment``: window ends are multiples of the
    frequency since the epoch (UTC), so every process agrees on them."""
    seconds = math.floor(moment.timestamp() / frequency_seconds) * frequency_seconds
    return datetime.fromtimestamp(seconds, tz=UTC)


def windows_due(monitor: Monitor, *, now: datetime | None = None) -> list[datetime]:
    """The ends of the windows that have closed (and waited ``delay_seconds`` for late results)
    and are not checked yet, oldest first, at most ``MAX_WINDOWS_PER_CHECK``."""
    now = now or timezone.now()
    step = timedelta(seconds=monitor.frequency_seconds)
    last = window_end_floor(
        now - timedelta(seconds=monitor.delay_seconds), monitor.frequency_seconds
    )
    start_after = monitor.checked_through or monitor.created_at
    first = window_end_floor(start_after, monitor.frequency_seconds)
    if first <= start_after:
        first += step
    ends = []
    end = first
    while end <= last and len(ends) < MAX_WINDOWS_PER_CHECK:
        ends.append(end)
        end += step
    if end <= last:  # far behind: the newest windows matter most
        ends = ends[-MAX_WINDOWS_PER_CHECK:]
    return ends


def monitors_due(*, now: datetime | None = None) -> list[int]:
    """Ids of the enabled monitors with at least one window to check."""
    now = now or timezone.now()
    return [m.pk for m in Monitor.objects.filter(enabled=True) if windows_due(m, now=now)]


# --- evaluating a window -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SegmentOutcome:
    segment: str
    stats: WindowStats
    baseline: WindowStats | None
    status: str
    p_value: float | None = None


@dataclass(frozen=True, slots=True)
class WindowOutcome:
    start: datetime
    end: datetime
    segments: list[SegmentOutcome]

    @property
    def breached(self) -> list[SegmentOutcome]:
        return [s for s in self.segments if s.status == CheckStatus.BREACH]

    @property
    def status(self) -> str:
        if self.breached:
            return CheckStatus.BREACH
        if any(s.status == CheckStatus.OK for s in self.segments):
            return CheckStatus.OK
        return CheckStatus.INSUFFICIENT

    @property
    def worst(self) -> SegmentOutcome | None:
        """The breaching segment furthest from normal, else the largest segment."""
        pool = self.breached or self.segments
        if not pool:
            return None
        if self.breached:
            return min(pool, key=lambda s: (s.p_value if s.p_value is not None else 1.0, -_gap(s)))
        return max(pool, key=lambda s: s.stats.samples)


def _gap(outcome: SegmentOutcome) -> float:
    value = outcome.stats.value or 0.0
    reference = outcome.baseline.value if outcome.baseline and outcome.baseline.value else 0.0
    return abs(value - reference)


def _needs_samples(metric: str) -> bool:
    return metric in RATE_METRICS or metric in MEAN_METRICS or metric in PERCENTILES


def _judge_threshold(monitor: Monitor, stats: WindowStats) -> str:
    if stats.value is None or (
        _needs_samples(monitor.metric) and stats.samples < monitor.min_samples
    ):
        return CheckStatus.INSUFFICIENT
    assert monitor.threshold is not None
    above = stats.value > monitor.threshold
    below = stats.value < monitor.threshold
    return (
        CheckStatus.BREACH
        if (above if monitor.direction == Direction.ABOVE else below)
        else CheckStatus.OK
    )


def _judge_baseline(
    monitor: Monitor, stats: WindowStats, base: WindowStats | None
) -> tuple[str, float | None]:
    if (
        base is None
        or stats.value is None
        or base.value is None
        or stats.samples < monitor.min_samples
        or base.samples < monitor.min_samples
    ):
        return CheckStatus.INSUFFICIENT, None
    side = "above" if monitor.direction == Direction.ABOVE else "below"
    if monitor.metric in RATE_METRICS:
        result = two_proportion_test(stats.hits, stats.samples, base.hits, base.samples, side=side)
    else:
        if stats.samples < 2 or base.samples < 2:
            return CheckStatus.INSUFFICIENT, None
        result = welch_t_test(
            stats.value, stats.variance, stats.samples,
            base.value, base.variance, base.samples, side=side,
        )  # fmt: skip
    effect = result.effect if side == "above" else -result.effect
    significant = result.p_value < monitor.significance and effect >= monitor.min_effect
    return (CheckStatus.BREACH if significant else CheckStatus.OK), result.p_value


MAX_STORED_SEGMENTS: Final = 200


def stats_pack(stats: dict[str, WindowStats]) -> dict[str, list[Any]] | None:
    """A window's counts as stored on its check (None when there are too many segments)."""
    if len(stats) > MAX_STORED_SEGMENTS:
        return None
    return {k: [v.value, v.samples, v.hits, v.variance] for k, v in stats.items()}


def stats_unpack(packed: dict[str, list[Any]]) -> dict[str, WindowStats]:
    return {
        k: WindowStats(value=v[0], samples=int(v[1]), hits=int(v[2]), variance=float(v[3]))
        for k, v in packed.items()
    }


def _stored_window(monitor: Monitor, end: datetime) -> dict[str, WindowStats] | None:
    """The counts of the window ending at ``end`` as this monitor checked them, when it did so
    with its current configuration (a baseline is then read, not computed again)."""
    if monitor.pk is None:
        return None
    row = (
        MonitorCheck.objects.filter(
            monitor=monitor,
            window_end=end,
            window_start=end - timedelta(seconds=monitor.window_seconds),
            created_at__gte=monitor.updated_at,
            stats__isnull=False,
        )
        .values_list("stats", flat=True)
        .first()
    )
    return stats_unpack(row) if row is not None else None


def monitor_evaluate_window(
    monitor: Monitor, end: datetime, *, memo: dict[datetime, dict[str, WindowStats]] | None = None
) -> WindowOutcome:
    """The monitor's metric over the window ending at ``end``, judged per segment. A baseline
    window is read from the check made of it when there is one (``memo``: windows computed
    earlier in this run, by end)."""
    start = end - timedelta(seconds=monitor.window_seconds)
    filter_q: Q = compile_filter(monitor.filter)
    segment = segment_expression(monitor.segment_field) if monitor.segment_field else None
    common: dict[str, Any] = {
        "project": monitor.project_id,
        "metric": monitor.metric,
        "filter_q": filter_q,
        "result_name": monitor.result_name,
        "label": monitor.label,
        "segment": segment,
        "by_id_range": filter_reads_metadata(monitor.filter),
    }
    current = metric_window(start=start, end=end, **common)
    if memo is not None:
        memo[end] = current
    if not current and segment is None:
        current = {NO_SEGMENT: WindowStats(value=None, samples=0)}
    baseline: dict[str, WindowStats] = {}
    if monitor.condition == Condition.BASELINE:
        offset = timedelta(seconds=monitor.baseline_offset_seconds)
        known = memo.get(end - offset) if memo is not None else None
        if known is None:
            known = _stored_window(monitor, end - offset)
        if known is None:
            known = metric_window(start=start - offset, end=end - offset, **common)
        baseline = known
    outcomes = []
    for key, stats in sorted(current.items()):
        if monitor.condition == Condition.THRESHOLD:
            outcomes.append(SegmentOutcome(key, stats, None, _judge_threshold(monitor, stats)))
        else:
            base = baseline.get(key)
            status, p_value = _judge_baseline(monitor, stats, base)
            outcomes.append(SegmentOutcome(key, stats, base, status, p_value))
    return WindowOutcome(start=start, end=end, segments=outcomes)


def _segment_rows(outcome: WindowOutcome) -> list[dict[str, Any]]:
    return [
        {
            "segment": s.segment,
            "value": s.stats.value,
            "samples": s.stats.samples,
            "baseline_value": s.baseline.value if s.baseline else None,
            "baseline_samples": s.baseline.samples if s.baseline else 0,
            "p_value": s.p_value,
            "status": s.status,
        }
        for s in outcome.segments[:200]
    ]


# --- the state machine -----------------------------------------------------------------------


def _sustained_segment(monitor: Monitor, latest: MonitorCheck) -> str | None:
    """The segment breached in each of the last ``consecutive`` checks (ending with
    ``latest``), or None. Windows with too few results break a streak."""
    checks = list(
        MonitorCheck.objects.filter(monitor=monitor, window_end__lte=latest.window_end)
        .order_by("-window_end")
        .values_list("breached_segments", flat=True)[: monitor.consecutive]
    )
    if len(checks) < monitor.consecutive:
        return None
    common = set(checks[0])
    for segments in checks[1:]:
        common &= set(segments)
    if not common:
        return None
    return latest.segment if latest.segment in common else sorted(common)[0]


def _transition(monitor: Monitor, check: MonitorCheck) -> MonitorEvent | None:
    if monitor.state != MonitorState.FIRING:
        segment = _sustained_segment(monitor, check)
        if segment is None:
            return None
        monitor.state, monitor.firing_segment = MonitorState.FIRING, segment
        return _event(monitor, check, EventKind.FIRED, segment)
    if check.status == CheckStatus.INSUFFICIENT:
        return None  # no evidence either way: stay firing
    if monitor.firing_segment in check.breached_segments:
        return None
    segment = monitor.firing_segment
    monitor.state, monitor.firing_segment = MonitorState.RESOLVED, ""
    return _event(monitor, check, EventKind.RESOLVED, segment)


def _event(monitor: Monitor, check: MonitorCheck, kind: str, segment: str) -> MonitorEvent:
    from evalhub.monitors.notify import alert_payload

    payload = alert_payload(monitor=monitor, check=check, kind=kind, segment=segment)
    return MonitorEvent.objects.create(
        monitor=monitor, kind=kind, check_row=check, message=payload["text"], payload=payload
    )


def _notify(monitor: Monitor, event: MonitorEvent) -> list[int]:
    """Deliveries of ``event`` to the monitor's enabled channels (none while muted), sent
    after the commit by their own tasks: a slow channel holds up no check."""
    if monitor.is_muted:
        return []
    deliveries = [
        Delivery.objects.create(channel=channel, event=event, payload=event.payload)
        for channel in monitor.channels.filter(enabled=True)
    ]
    event.notified = bool(deliveries)
    event.save(update_fields=["notified"])
    ids = [d.pk for d in deliveries]
    if ids:
        transaction.on_commit(lambda: [job_send(DELIVERY_SEND, pk) for pk in ids])
    return ids


def monitor_check(*, monitor_id: int, now: datetime | None = None) -> list[MonitorCheck]:
    """Check every due window of a monitor, oldest first, each in its own transaction under
    the monitor's row lock. A window already checked (a redelivered task, a second dispatcher)
    is skipped: its row exists. Returns the checks written."""
    written = []
    while True:
        with transaction.atomic():
            monitor = (
                Monitor.objects.select_for_update()
                .select_related("project")
                .filter(pk=monitor_id)
                .first()
            )
            if monitor is None or not monitor.enabled:
                return written
            due = windows_due(monitor, now=now)
            if not due:
                return written
            end = due[0]
            check = _check_window(monitor, end)
            if check is not None:
                written.append(check)
            monitor.checked_through = end
            monitor.save(update_fields=["checked_through", "state", "firing_segment"])


def _check_window(monitor: Monitor, end: datetime) -> MonitorCheck | None:
    if MonitorCheck.objects.filter(monitor=monitor, window_end=end).exists():
        return None
    began = time.perf_counter()
    memo: dict[datetime, dict[str, WindowStats]] = {}
    outcome = monitor_evaluate_window(monitor, end, memo=memo)
    worst = outcome.worst
    check = MonitorCheck.objects.create(
        monitor=monitor,
        window_start=outcome.start,
        window_end=end,
        status=outcome.status,
        value=worst.stats.value if worst else None,
        samples=worst.stats.samples if worst else 0,
        baseline_value=worst.baseline.value if worst and worst.baseline else None,
        baseline_samples=worst.baseline.samples if worst and worst.baseline else 0,
        p_value=worst.p_value if worst else None,
        segment=worst.segment if worst else "",
        breached_segments=[s.segment for s in outcome.breached],
        segments=_segment_rows(outcome) if monitor.segment_field else [],
        stats=stats_pack(memo[end]),
        duration_ms=(time.perf_counter() - began) * 1000,
    )
    event = _transition(monitor, check)
    if event is not None:
        _notify(monitor, event)
    return check


# --- "would have fired" ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PreviewPoint:
    end: datetime
    value: float | None
    baseline: float | None
    samples: int
    status: str
    firing: bool
    fired: bool  # the monitor would have fired at this window


@dataclass(frozen=True, slots=True)
class Preview:
    points: list[PreviewPoint]
    step_seconds: int
    threshold: float | None

    @property
    def fired_count(self) -> int:
        return sum(p.fired for p in self.points)


PREVIEW_DAYS: Final = 30
PREVIEW_MAX_WINDOWS: Final = 120


def monitor_preview(
    *, project: Project, data: MonitorInput, now: datetime | None = None
) -> Preview:
    """How ``data`` (validated) would have behaved over the last 30 days: its windows every
    ``max(frequency, 30 days / 120)``, the sustained condition run over them in order. Nothing
    is written."""
    data = monitor_clean(data)
    now = now or timezone.now()
    span = timedelta(days=PREVIEW_DAYS).total_seconds()
    step = max(data.frequency_seconds, math.ceil(span / PREVIEW_MAX_WINDOWS))
    monitor = Monitor(project=project, **{name: getattr(data, name) for name in _FIELDS})
    last = window_end_floor(now, step)
    ends = [last - timedelta(seconds=step * k) for k in range(PREVIEW_MAX_WINDOWS - 1, -1, -1)]
    points: list[PreviewPoint] = []
    streaks: dict[str, int] = {}
    firing: str | None = None
    memo: dict[datetime, dict[str, WindowStats]] = {}
    for end in ends:
        outcome = monitor_evaluate_window(monitor, end, memo=memo)
        breached = {s.segment for s in outcome.breached}
        streaks = {key: streaks.get(key, 0) + 1 for key in breached}
        fired = False
        if firing is None:
            sustained = [k for k, n in streaks.items() if n >= data.consecutive]
            if sustained:
                firing, fired = sustained[0], True
        elif outcome.status != CheckStatus.INSUFFICIENT and firing not in breached:
            firing = None
        worst = outcome.worst
        points.append(
            PreviewPoint(
                end=end,
                value=worst.stats.value if worst else None,
                baseline=worst.baseline.value if worst and worst.baseline else None,
                samples=worst.stats.samples if worst else 0,
                status=outcome.status,
                firing=firing is not None,
                fired=fired,
            )
        )
    return Preview(points=points, step_seconds=step, threshold=data.threshold)


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


__all__ = [
    "MonitorInput",
    "MonitorInvalid",
    "MonitorNameTaken",
    "Preview",
    "PreviewPoint",
    "channels_by_name",
    "monitor_check",
    "monitor_clean",
    "monitor_create",
    "monitor_delete",
    "monitor_evaluate_window",
    "monitor_input_from",
    "monitor_mute",
    "monitor_preview",
    "monitor_update",
    "monitors_due",
    "window_end_floor",
    "windows_due",
]
