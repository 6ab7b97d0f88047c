"""Monitors checked window by window: metrics computed in SQL, the sustained and baseline
conditions, segments, the state machine with its history, idempotent checks, mutes and the
errors of a bad configuration."""

from __future__ import annotations

from datetime import timedelta

import pytest

from annotations.models import Annotation
from evalhub.monitors import checks
from evalhub.monitors.channels import ChannelInput, channel_create
from evalhub.monitors.checks import (
    monitor_check,
    monitor_evaluate_window,
    monitor_preview,
    windows_due,
)
from evalhub.monitors.metrics import metric_window
from evalhub.monitors.models import (
    CheckStatus,
    Delivery,
    EventKind,
    Monitor,
    MonitorCheck,
    MonitorState,
)
from evalhub.monitors.services import MonitorInput, MonitorInvalid, monitor_create, monitor_mute
from tests import factories
from tests.evalhub.monitors.helpers import labelled_spans, preview_window_start
from tests.factories import BASE_TIME
from tracing.query import compile_filter

pytestmark = pytest.mark.django_db
W = 300  # a five-minute window


def _rate_monitor(**changes) -> Monitor:
    data = MonitorInput(
        name="correctness drop",
        metric="eval_label_rate",
        result_name="correctness",
        label="incorrect",
        condition="threshold",
        threshold=0.25,
        consecutive=2,
        window_seconds=W,
        frequency_seconds=W,
        delay_seconds=0,
        min_samples=10,
        filter="span_kind = 'LLM'",
    )
    for name, value in changes.items():
        setattr(data, name, value)
    monitor = monitor_create(project=factories.project(), data=data)
    Monitor.objects.filter(pk=monitor.pk).update(created_at=BASE_TIME)
    monitor.refresh_from_db()
    return monitor


def _windows(rates: list[int], *, total: int = 40, **kwargs) -> None:
    """One window of ``total`` judged spans per entry, with that many 'incorrect'."""
    for index, incorrect in enumerate(rates):
        labelled_spans(
            start=BASE_TIME + timedelta(seconds=W * index + 1), total=total, incorrect=incorrect,
            **kwargs,
        )  # fmt: skip


def test_a_sustained_drop_fires_once_a_noisy_window_does_not_and_recovery_resolves(
    django_capture_on_commit_callbacks,
):
    # 10 % incorrect, one noisy window at 40 %, back to 10 %, then 40 % for three windows,
    # then 10 % again.
    _windows([4, 16, 4, 16, 16, 16, 4, 4])
    channel = channel_create(
        data=ChannelInput(name="ops", kind="webhook", url="http://127.0.0.1:9/hook")
    )
    monitor = _rate_monitor()
    monitor.channels.set([channel])
    with django_capture_on_commit_callbacks() as callbacks:
        checks = monitor_check(monitor_id=monitor.pk, now=BASE_TIME + timedelta(seconds=W * 8))
    assert [c.status for c in checks] == [
        "ok", "breach", "ok", "breach", "breach", "breach", "ok", "ok"
    ]  # fmt: skip
    assert [round(c.value, 2) for c in checks] == [0.1, 0.4, 0.1, 0.4, 0.4, 0.4, 0.1, 0.1]
    assert {c.samples for c in checks} == {40}
    events = list(monitor.events.order_by("created_at", "id"))
    assert [e.kind for e in events] == [EventKind.FIRED, EventKind.RESOLVED]
    fired = events[0]
    # Fired at the second window of the sustained drop (window 5), not at the noisy window 2.
    assert fired.check_row.window_end == BASE_TIME + timedelta(seconds=W * 5)
    assert fired.payload["value"] == pytest.approx(0.4) and fired.payload["samples"] == 40
    assert fired.payload["threshold"] == 0.25
    assert fired.payload["monitor"]["metric"] == "eval_label_rate"
    assert (
        "start_time" in fired.payload["traces_url"] and "span_kind" in fired.payload["traces_url"]
    )
    monitor.refresh_from_db()
    assert monitor.state == MonitorState.RESOLVED
    # One delivery per event, sent after the commit.
    assert Delivery.objects.filter(channel=channel).count() == 2
    assert len(callbacks) == 2


def test_a_check_delivered_twice_writes_nothing_twice():
    _windows([16, 16, 16])
    monitor = _rate_monitor()
    now = BASE_TIME + timedelta(seconds=W * 3)
    first = monitor_check(monitor_id=monitor.pk, now=now)
    again = monitor_check(monitor_id=monitor.pk, now=now)
    assert len(first) == 3 and again == []
    assert MonitorCheck.objects.filter(monitor=monitor).count() == 3
    assert monitor.events.filter(kind=EventKind.FIRED).count() == 1
    # Even with the cursor put back (a lost save), the unique window rows hold.
    Monitor.objects.filter(pk=monitor.pk).update(checked_through=None)
    assert monitor_check(monitor_id=monitor.pk, now=now) == []
    assert monitor.events.count() == 1


def test_windows_due_wait_for_the_delay_and_start_at_creation():
    monitor = _rate_monitor(delay_seconds=60)
    assert windows_due(monitor, now=BASE_TIME + timedelta(seconds=W + 59)) == []
    assert windows_due(monitor, now=BASE_TIME + timedelta(seconds=W + 60)) == [
        BASE_TIME + timedelta(seconds=W)
    ]


def test_too_few_results_neither_fire_nor_resolve():
    _windows([16, 16], total=40)
    _windows([], total=0)
    labelled_spans(start=BASE_TIME + timedelta(seconds=2 * W + 1), total=5, incorrect=0)
    monitor = _rate_monitor()
    checks = monitor_check(monitor_id=monitor.pk, now=BASE_TIME + timedelta(seconds=W * 3))
    assert [c.status for c in checks] == ["breach", "breach", "insufficient"]
    monitor.refresh_from_db()
    assert monitor.state == MonitorState.FIRING


def test_a_baseline_drop_is_tested_for_significance():
    day = timedelta(days=1)
    # Yesterday: 10 % incorrect of 200; today 40 % of 200 → significant; 12 % → not.
    labelled_spans(start=BASE_TIME - day + timedelta(seconds=1), total=200, incorrect=20)
    labelled_spans(start=BASE_TIME + timedelta(seconds=1), total=200, incorrect=80)
    labelled_spans(start=BASE_TIME - day + timedelta(seconds=W + 1), total=200, incorrect=20)
    labelled_spans(start=BASE_TIME + timedelta(seconds=W + 1), total=200, incorrect=24)
    monitor = _rate_monitor(
        condition="baseline", consecutive=1, significance=0.01, min_effect=0.05, min_samples=50
    )
    first, second = monitor_check(monitor_id=monitor.pk, now=BASE_TIME + timedelta(seconds=2 * W))
    assert first.status == CheckStatus.BREACH and first.p_value < 1e-6
    assert (first.baseline_value, first.baseline_samples) == (pytest.approx(0.1), 200)
    assert second.status == CheckStatus.OK and second.p_value > 0.01
    event = monitor.events.get(kind=EventKind.FIRED)
    assert "baseline 10.0 %" in event.message and "n=200" in event.message


def test_a_mean_score_drop_uses_welch():
    day = timedelta(days=1)
    labelled_spans(start=BASE_TIME - day + timedelta(seconds=1), total=100, incorrect=10)
    labelled_spans(start=BASE_TIME + timedelta(seconds=1), total=100, incorrect=45)
    monitor = _rate_monitor(
        metric="eval_mean_score", label="", condition="baseline", direction="below",
        consecutive=1, min_effect=0.1,
    )  # fmt: skip
    (check,) = monitor_check(monitor_id=monitor.pk, now=BASE_TIME + timedelta(seconds=W))
    assert check.status == CheckStatus.BREACH
    assert check.value == pytest.approx(0.55) and check.baseline_value == pytest.approx(0.9)


def test_a_segment_names_the_model_that_dropped():
    _windows([2, 2], model="gpt-good")
    _windows([20, 20], model="gpt-bad")
    monitor = _rate_monitor(segment_field="model_name")
    monitor_check(monitor_id=monitor.pk, now=BASE_TIME + timedelta(seconds=2 * W))
    event = monitor.events.get(kind=EventKind.FIRED)
    assert event.payload["segment"] == "gpt-bad" and "[model_name = gpt-bad]" in event.message
    assert "model_name+%3D+%27gpt-bad%27" in event.payload["traces_url"]
    check = monitor.checks.first()
    assert {row["segment"] for row in check.segments} == {"gpt-bad", "gpt-good"}


def test_span_metrics_are_computed_in_the_database():
    labelled_spans(start=BASE_TIME, total=100, incorrect=7)
    common = {
        "project": factories.project(),
        "filter_q": compile_filter("span_kind = 'LLM'"),
        "start": BASE_TIME,
        "end": BASE_TIME + timedelta(seconds=W),
    }
    assert metric_window(metric="error_rate", **common)[""].value == pytest.approx(0.07)
    assert metric_window(metric="span_count", **common)[""].value == 100
    assert metric_window(metric="tokens", **common)[""].value == 100 * 120
    p50 = metric_window(metric="latency_p50", **common)[""]
    assert p50.value == pytest.approx(149.5) and p50.samples == 100
    assert metric_window(metric="latency_p99", **common)[""].value == pytest.approx(198.01)
    human = metric_window(
        metric="annotation_label_rate", result_name="correctness", label="incorrect", **common
    )
    assert human == {}  # the judge's labels are not people's


def test_a_muted_monitor_records_but_sends_nothing():
    _windows([16, 16])
    channel = channel_create(
        data=ChannelInput(name="ops", kind="slack", url="http://127.0.0.1:9/x")
    )
    monitor = _rate_monitor()
    monitor.channels.set([channel])
    from django.utils import timezone

    monitor_mute(monitor=monitor, until=timezone.now() + timedelta(hours=1))
    monitor_check(monitor_id=monitor.pk, now=BASE_TIME + timedelta(seconds=2 * W))
    assert monitor.events.filter(kind=EventKind.FIRED, notified=False).count() == 1
    assert not Delivery.objects.exists()
    assert monitor.events.filter(kind=EventKind.MUTED).exists()


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"filter": "nonsense_field = 1"}, "filter", "nonsense_field"),
        ({"segment_field": "no_such"}, "segment_field", "no_such"),
        ({"window_seconds": 0}, "window_seconds", "must not be empty"),
        ({"window_seconds": 60}, "window_seconds", "between 300"),
        ({"threshold": 1.5}, "threshold", "between 0 and 1"),
        ({"threshold": None}, "threshold", "needs a threshold"),
        ({"metric": "vibes"}, "metric", "must be one of"),
        ({"label": ""}, "label", "label"),
        ({"condition": "baseline", "metric": "tokens"}, "condition", "rate or a mean"),
        ({"condition": "baseline", "significance": 0.9}, "significance", "between 0 and 0.5"),
        ({"consecutive": 0}, "consecutive", "between 1"),
    ],
)
def test_bad_configuration_names_the_field(changes, field, words):
    with pytest.raises(MonitorInvalid) as caught:
        _rate_monitor(**changes)
    assert caught.value.field == field and words in caught.value.message
    assert not Monitor.objects.exists()


def test_the_preview_shows_when_the_monitor_would_have_fired():
    from django.utils import timezone

    now = timezone.now()
    step = 30 * 86400 // 120
    for index, incorrect in enumerate([4, 16, 4, 16, 16, 4]):
        labelled_spans(start=preview_window_start(now, 9 - index), total=40, incorrect=incorrect,
                       seconds=60)  # fmt: skip
    data = MonitorInput(
        name="p", metric="eval_label_rate", result_name="correctness", label="incorrect",
        condition="threshold", threshold=0.25, consecutive=2, window_seconds=step,
        frequency_seconds=W, min_samples=10,
    )  # fmt: skip
    preview = monitor_preview(project=factories.project(), data=data, now=now)
    assert preview.step_seconds == step and len(preview.points) == 120
    assert preview.fired_count == 1
    breaches = [p for p in preview.points if p.status == "breach"]
    assert len(breaches) == 3


def test_a_check_that_dies_midway_leaves_its_window_to_the_next_one(monkeypatch):
    """A worker killed mid-check (here: an error after the metric was computed) rolls its
    transaction back: no row, the cursor where it was; the redelivered check does it all once."""
    _windows([16, 16])
    monitor = _rate_monitor()
    now = BASE_TIME + timedelta(seconds=2 * W)
    calls = {"n": 0}
    real = checks._transition

    def dying(monitor, check):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("worker lost")
        return real(monitor, check)

    monkeypatch.setattr(checks, "_transition", dying)
    with pytest.raises(RuntimeError):
        monitor_check(monitor_id=monitor.pk, now=now)
    assert MonitorCheck.objects.filter(monitor=monitor).count() == 1  # the first window's
    monitor.refresh_from_db()
    assert monitor.checked_through == BASE_TIME + timedelta(seconds=W)
    assert not monitor.events.exists()
    (again,) = monitor_check(monitor_id=monitor.pk, now=now)
    assert again.window_end == now
    assert monitor.events.filter(kind=EventKind.FIRED).count() == 1


def test_a_baseline_is_read_from_the_check_made_of_it():
    day = timedelta(days=1)
    labelled_spans(start=BASE_TIME - day + timedelta(seconds=1), total=200, incorrect=20)
    labelled_spans(start=BASE_TIME + timedelta(seconds=1), total=200, incorrect=80)
    monitor = _rate_monitor(condition="baseline", consecutive=1, min_samples=50)
    Monitor.objects.filter(pk=monitor.pk).update(created_at=BASE_TIME - day)
    (yesterday,) = monitor_check(monitor_id=monitor.pk, now=BASE_TIME - day + timedelta(seconds=W))
    assert yesterday.stats == {"": [0.1, 200, 20, 0.0]}  # value, samples, hits, variance
    # Yesterday's results are gone (deleted, say): the check made of them still stands.
    Annotation.objects.filter(span__start_time__lt=BASE_TIME).delete()
    MonitorCheck.objects.filter(monitor=monitor).update(created_at=BASE_TIME)
    Monitor.objects.filter(pk=monitor.pk).update(
        checked_through=BASE_TIME, updated_at=BASE_TIME - day
    )
    (today,) = monitor_check(monitor_id=monitor.pk, now=BASE_TIME + timedelta(seconds=W))
    assert today.status == CheckStatus.BREACH and today.baseline_samples == 200
    # A monitor changed since that check computes its baseline again.
    Monitor.objects.filter(pk=monitor.pk).update(updated_at=BASE_TIME + timedelta(hours=1))
    monitor.refresh_from_db()
    outcome = monitor_evaluate_window(monitor, BASE_TIME + timedelta(seconds=W))
    assert outcome.status == CheckStatus.INSUFFICIENT
