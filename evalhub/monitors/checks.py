"""Checking a monitor: its closed windows (one row per window, so a check delivered twice
changes nothing), its state machine OK → firing → resolved with history, the alerts'
deliveries enqueued after the commit, and how a monitor would have behaved over the last 30
days (``monitor_preview``). What a valid monitor is: ``evalhub.monitors.services``."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from evalhub.monitors.channels import deliveries_send
from evalhub.monitors.metrics import (
    MEAN_METRICS,
    NO_SEGMENT,
    PERCENTILES,
    RATE_METRICS,
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
    Monitor,
    MonitorCheck,
    MonitorEvent,
    MonitorState,
)
from evalhub.monitors.services import MONITOR_FIELDS, MonitorInput, monitor_clean
from evalhub.monitors.stats import Side, two_proportion_test, welch_t_test
from tracing.models import Project
from tracing.query import compile_filter

MAX_WINDOWS_PER_CHECK: Final = 50  # catching up after downtime: at most this many per task

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
    ends: list[datetime] = []
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
    side: Side = "above" if monitor.direction == Direction.ABOVE else "below"
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
    return deliveries_send(deliveries)


def monitor_check(*, monitor_id: int, now: datetime | None = None) -> list[MonitorCheck]:
    """Check every due window of a monitor, oldest first, each in its own transaction under
    the monitor's row lock. A window already checked (a redelivered task, a second dispatcher)
    is skipped: its row exists. Returns the checks written."""
    written: list[MonitorCheck] = []
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
    monitor = Monitor(project=project, **{name: getattr(data, name) for name in MONITOR_FIELDS})
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
