"""A real Celery worker (with its beat) killed with SIGKILL in the middle of a monitor's check,
while an automation's job for the same results was lost: a second worker checks the window
again, the alert fires once (one event, one signed message), and the automation's sweep puts
the failing spans into the queue once; the dead worker's messages, delivered again, change
nothing.

The worker is caught mid-check by a row this test inserts and does not commit: the check's own
row for the window (unique per monitor and window), so the worker has computed the window and
waits on its insert, holding the monitor's row lock, when it is killed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import timedelta

import psycopg
import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.utils import timezone

from annotations.queues.models import LabelingQueueItem
from annotations.queues.services import queue_create
from annotations.rubrics.services import annotation_config_create
from annotations.store.signals import annotations_written
from evalhub.monitors import receivers
from evalhub.monitors.automations import AutomationInput, automation_create
from evalhub.monitors.channels import ChannelInput, channel_create
from evalhub.monitors.checks import window_end_floor
from evalhub.monitors.jobs import automations_apply as automations_apply_task
from evalhub.monitors.jobs import monitor_check as monitor_check_task
from evalhub.monitors.models import (
    AutomationHit,
    Delivery,
    EventKind,
    Monitor,
    MonitorCheck,
    MonitorEvent,
)
from evalhub.monitors.notify import SIGNATURE_HEADER, TIMESTAMP_HEADER
from evalhub.monitors.services import MonitorInput, monitor_create
from tests import factories
from tests.evalhub.monitors.helpers import labelled_spans
from tests.evalhub.tasks.worker_process import Worker, broker_flush, wait_for

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="a worker process needs PostgreSQL"
    ),
]
WINDOW = 3  # seconds (EVALHUB_MONITOR_MIN_WINDOW_SECONDS=1 in the worker)


@pytest.fixture
def workers(tmp_path):
    broker_flush()
    started: list[Worker] = []

    def start() -> Worker:
        process = Worker(
            tmp_path,
            EVALHUB_MONITORS_TICK_SECONDS="1",
            EVALHUB_MONITOR_MIN_WINDOW_SECONDS="1",
            EVALHUB_AUTOMATIONS_SWEEP_SECONDS="1",
            EVALHUB_AUTOMATIONS_SWEEP_GRACE_SECONDS="1",
            EVALHUB_WEBHOOK_BACKOFF_SECONDS="1",
        ).start()
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()
    broker_flush()


def _results_without_their_job(**kwargs):
    """Spans and judge results written, their automation job lost (never sent)."""
    annotations_written.disconnect(dispatch_uid="monitors.automations")
    try:
        return labelled_spans(**kwargs)
    finally:
        annotations_written.connect(
            receivers._on_annotations_written, dispatch_uid="monitors.automations"
        )


def _blocker(monitor: Monitor, end) -> psycopg.Connection:
    """A connection holding an uncommitted check row for ``monitor``'s window ``end``."""
    db = django_settings.DATABASES["default"]
    conn = psycopg.connect(
        host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432, user=db["USER"],
        dbname=db["NAME"], password=db["PASSWORD"] or None,
    )  # fmt: skip
    conn.execute(
        "INSERT INTO monitors_monitorcheck (monitor_id, window_start, window_end, status,"
        " samples, baseline_samples, segment, breached_segments, segments, duration_ms,"
        " created_at) VALUES (%s, %s, %s, 'ok', 0, 0, '', '[]', '[]', 0, now())",
        [monitor.pk, end - timedelta(seconds=WINDOW), end],
    )
    return conn


def _check_waiting_on_its_insert() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event_type = 'Lock' AND query LIKE 'INSERT INTO \"monitors_monitorcheck\"%%'"
        )
        return cursor.fetchone()[0] == 1


def test_a_worker_killed_mid_check_loses_nothing_and_the_alert_fires_once(
    receiver, workers, settings
):
    settings.EVALHUB_MONITOR_MIN_WINDOW_SECONDS = 1
    project = factories.project("default")
    channel = channel_create(
        data=ChannelInput(name="on-call", kind="webhook", url=receiver.url, secret="topsecret")
    )
    config = annotation_config_create(
        name="verdict", kind="CATEGORICAL", values=[{"label": "ok"}, {"label": "wrong"}]
    )
    queue = queue_create(name="judged incorrect", item_kind="SPAN", configs=[config])
    automation = automation_create(
        project=project,
        data=AutomationInput(
            name="failures to review", filter="eval.correctness.label = 'incorrect'",
            action="queue", queue=queue,
        ),
    )  # fmt: skip
    monitor = monitor_create(
        project=project,
        data=MonitorInput(
            name="correctness drop", metric="eval_label_rate", result_name="correctness",
            label="incorrect", condition="threshold", threshold=0.25, consecutive=1,
            window_seconds=WINDOW, frequency_seconds=WINDOW, delay_seconds=0, min_samples=10,
            channels=[channel], enabled=False,
        ),
    )  # fmt: skip
    # A closed window at 40 % incorrect, its automation job lost.
    end = window_end_floor(timezone.now(), WINDOW) - timedelta(seconds=WINDOW)
    spans = _results_without_their_job(
        start=end - timedelta(seconds=WINDOW - 0.2), total=20, incorrect=8, seconds=2
    )
    blocker = _blocker(monitor, end)
    try:
        Monitor.objects.filter(pk=monitor.pk).update(
            enabled=True, checked_through=end - timedelta(seconds=WINDOW)
        )
        first = workers()
        wait_for(_check_waiting_on_its_insert, timeout=60, worker=first)
        first.kill()
    finally:
        blocker.rollback()
        blocker.close()
    # Killed mid-check: nothing of it was committed.
    assert not MonitorCheck.objects.filter(monitor=monitor).exists()
    assert not MonitorEvent.objects.exists() and not Delivery.objects.exists()

    second = workers()
    wait_for(lambda: len(receiver.requests) >= 1, timeout=90, worker=second)
    # Let the monitor go on checking (empty windows: too few results, it stays firing), the
    # sweep pass several times, and any message left over from the dead worker arrive.
    wait_for(
        lambda: (
            Monitor.objects.get(pk=monitor.pk).checked_through
            >= end + timedelta(seconds=3 * WINDOW)
        ),
        timeout=60,
        worker=second,
    )
    wait_for(
        lambda: LabelingQueueItem.objects.filter(queue=queue).count() == 8,
        timeout=60,
        worker=second,
    )
    automation.refresh_from_db()
    swept = automation.swept_through
    wait_for(
        lambda: (
            Monitor.objects.get(pk=monitor.pk).checked_through
            >= end + timedelta(seconds=5 * WINDOW)
            and type(automation).objects.get(pk=automation.pk).swept_through > swept
        ),
        timeout=60,
        worker=second,
    )

    check = MonitorCheck.objects.get(monitor=monitor, window_end=end)
    assert (check.status, check.value, check.samples) == ("breach", 0.4, 20)
    events = list(MonitorEvent.objects.filter(monitor=monitor))
    assert [e.kind for e in events] == [EventKind.FIRED] and events[0].check_row == check
    assert Delivery.objects.filter(channel=channel).count() == 1
    assert len(receiver.requests) == 1
    (request,) = receiver.requests
    body = json.loads(request["body"])
    assert body["type"] == "monitor.fired" and body["value"] == 0.4 and body["samples"] == 20
    mac = hmac.new(
        b"topsecret",
        request["headers"][TIMESTAMP_HEADER].encode() + b"." + request["body"],
        hashlib.sha256,
    ).hexdigest()
    assert request["headers"][SIGNATURE_HEADER] == f"sha256={mac}"
    # The lost automation job was made up for by the sweep, once per span.
    queued = set(LabelingQueueItem.objects.filter(queue=queue).values_list("span_id", flat=True))
    assert queued == {s.pk for s in spans[:8]}
    assert AutomationHit.objects.filter(automation=automation).count() == 8

    # The dead worker's messages, were the broker to deliver them again (after its visibility
    # timeout), find their work done: the task bodies run here change nothing.
    second.stop()
    monitor_check_task(monitor.pk)
    assert automations_apply_task(project.pk, [s.pk for s in spans]) == 0
    assert MonitorCheck.objects.get(monitor=monitor, window_end=end).pk == check.pk
    assert MonitorEvent.objects.filter(monitor=monitor).count() == 1
    assert Delivery.objects.count() == 1
    assert LabelingQueueItem.objects.filter(queue=queue).count() == 8
