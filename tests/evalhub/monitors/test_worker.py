"""The done-when test: a real Celery worker with its beat, Redis, PostgreSQL, OTLP ingest, an
online task judging LLM spans with the fake judge, a monitor on the judge's label rate, a signed
webhook to a local receiver and an automation feeding a labeling queue.

Traffic is sent through OTLP with its spans placed in the monitor's coming windows: 10 %
of the answers are judged incorrect, then one noisy window at 40 %, 10 % again, then a sustained
40 %, then 10 % again. The monitor is switched on once the judge has scored everything, so the
windows' checks never race the judge (a real monitor waits ``delay_seconds`` for late results
instead); from then on beat's dispatcher checks each window as it closes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from annotations.models import Annotation
from annotations.queues.models import LabelingQueueItem
from annotations.queues.services import queue_create
from annotations.rubrics.services import annotation_config_create
from evalhub.monitors.automations import AutomationInput, automation_create
from evalhub.monitors.channels import ChannelInput, channel_create
from evalhub.monitors.checks import window_end_floor
from evalhub.monitors.models import Delivery, EventKind, Monitor, MonitorCheck, MonitorState
from evalhub.monitors.notify import SIGNATURE_HEADER, TIMESTAMP_HEADER
from evalhub.monitors.services import MonitorInput, monitor_create
from tests import factories
from tests.evalhub.fake_openai import completion
from tests.evalhub.monitors.receiver import Receiver
from tests.evalhub.tasks.factories import judge, make_task
from tests.evalhub.tasks.worker_process import Worker, broker_flush, wait_for
from tests.tracing.ingest.otlp_factories import otlp_json, pb_request, pb_span

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="a worker process needs PostgreSQL"
    ),
]
WINDOW = 3  # seconds (EVALHUB_MONITOR_MIN_WINDOW_SECONDS=1 in the worker)
PER_WINDOW = 20
# Incorrect answers per window of 20: 10 %, 10 %, one noisy 40 %, 10 %, a sustained 40 %, 10 %.
PLAN = [2, 2, 8, 2, 8, 8, 8, 2, 2]


def _judge_by_content(body: dict[str, Any]) -> dict[str, Any]:
    """The fake judge's verdict: 'incorrect' when the answer it is shown is marked BAD."""
    prompt = " ".join(str(m.get("content", "")) for m in body.get("messages", []))
    label = "incorrect" if "BAD" in prompt else "correct"
    return completion(body, verdict={"label": label})


def _send(client, auth, *, start, bad: int, total: int) -> None:
    """``total`` traces (an AGENT root and an LLM child) starting within ``start`` + 2 s, the
    first ``bad`` of them with a wrong answer."""
    spans = []
    for number in range(total):
        trace_id = bytes.fromhex(factories.next_hex(32))
        root_id = bytes.fromhex(factories.next_hex(16))
        begin = int((start + timedelta(milliseconds=100 * number)).timestamp() * 1e9)
        answer = f"BAD answer {number}" if number < bad else f"good answer {number}"
        spans.append(
            pb_span(
                trace_id=trace_id, span_id=root_id, name="agent", start_ns=begin,
                end_ns=begin + 50_000_000,
                attributes={"openinference.span.kind": "AGENT", "input.value": f"q{number}",
                            "output.value": answer},
            )
        )  # fmt: skip
        spans.append(
            pb_span(
                trace_id=trace_id, span_id=bytes.fromhex(factories.next_hex(16)),
                parent_id=root_id, name="llm", start_ns=begin + 1_000_000,
                end_ns=begin + 40_000_000,
                attributes={"openinference.span.kind": "LLM", "input.value": f"q{number}",
                            "output.value": answer},
            )
        )  # fmt: skip
    body = json.dumps(
        otlp_json(pb_request(*spans, resource={"openinference.project.name": "default"}))
    )
    response = client.post("/v1/traces", data=body, content_type="application/json", headers=auth)
    assert response.status_code == 200, response.content


@pytest.fixture
def worker(tmp_path):
    broker_flush()
    process = Worker(
        tmp_path,
        EVALHUB_MONITORS_TICK_SECONDS="1",
        EVALHUB_MONITOR_MIN_WINDOW_SECONDS="1",
        EVALHUB_WEBHOOK_BACKOFF_SECONDS="1",
    )
    yield process
    process.stop()
    broker_flush()


@pytest.fixture
def broken_receiver():
    """A webhook that answers 500 every time."""
    server = Receiver().start()
    server.statuses.extend([500] * 100)
    yield server
    server.stop()


def test_a_sustained_quality_drop_fires_once_notifies_queues_and_resolves(
    client, auth, provider, fake_openai, receiver, broken_receiver, worker, settings
):
    settings.EVALHUB_MONITOR_MIN_WINDOW_SECONDS = 1
    fake_openai.reply = _judge_by_content
    project = factories.project("default")
    make_task(judge(), filter="span_kind = 'LLM'")
    channel = channel_create(
        data=ChannelInput(name="on-call", kind="webhook", url=receiver.url, secret="topsecret")
    )
    # A second channel that fails: retried with back-off, never in the way of the checks.
    broken = channel_create(
        data=ChannelInput(name="broken", kind="webhook", url=broken_receiver.url)
    )
    config = annotation_config_create(
        name="verdict", kind="CATEGORICAL", values=[{"label": "ok"}, {"label": "wrong"}]
    )
    queue = queue_create(name="judged incorrect", item_kind="SPAN", configs=[config])
    automation_create(
        project=project,
        data=AutomationInput(
            name="failures to review",
            filter="eval.correctness.label = 'incorrect'",
            action="queue",
            queue=queue,
        ),
    )
    monitor = monitor_create(
        project=project,
        data=MonitorInput(
            name="correctness drop", metric="eval_label_rate", result_name="correctness",
            label="incorrect", filter="span_kind = 'LLM'", condition="threshold",
            threshold=0.25, consecutive=2, window_seconds=WINDOW, frequency_seconds=WINDOW,
            delay_seconds=1, min_samples=10, channels=[broken, channel], enabled=False,
        ),
    )  # fmt: skip
    first_end = window_end_floor(timezone.now(), WINDOW) + timedelta(seconds=2 * WINDOW)
    for index, bad in enumerate(PLAN):
        window_start = first_end + timedelta(seconds=WINDOW * index)
        _send(
            client,
            auth,
            start=window_start + timedelta(milliseconds=200),
            bad=bad,
            total=PER_WINDOW,
        )
    worker.start()
    total = PER_WINDOW * len(PLAN)
    wait_for(
        lambda: Annotation.objects.filter(name="correctness").count() == total,
        timeout=120,
        worker=worker,
    )
    assert Annotation.objects.filter(name="correctness", label="incorrect").count() == sum(PLAN)
    Monitor.objects.filter(pk=monitor.pk).update(enabled=True)

    last_end = first_end + timedelta(seconds=WINDOW * len(PLAN))
    wait_for(
        lambda: MonitorCheck.objects.filter(monitor=monitor, window_end=last_end).exists(),
        timeout=120,
        worker=worker,
    )
    checks = list(
        MonitorCheck.objects.filter(
            monitor=monitor, window_end__gt=first_end, window_end__lte=last_end
        ).order_by("window_end")
    )
    assert [round(c.value, 2) for c in checks] == [b / PER_WINDOW for b in PLAN]
    assert all(c.samples == PER_WINDOW for c in checks)
    events = list(monitor.events.order_by("created_at", "id"))
    # Fired once — at the second window of the sustained drop, not at the noisy one — and
    # resolved when the rate came back.
    assert [e.kind for e in events] == [EventKind.FIRED, EventKind.RESOLVED]
    assert events[0].check_row.window_end == first_end + timedelta(seconds=WINDOW * 6)
    assert events[1].check_row.window_end == first_end + timedelta(seconds=WINDOW * 8)
    monitor.refresh_from_db()
    assert monitor.state == MonitorState.RESOLVED

    # The webhook received both, signed.
    wait_for(lambda: len(receiver.requests) >= 2, timeout=60, worker=worker)
    fired, resolved = (json.loads(r["body"]) for r in receiver.requests[:2])
    assert (fired["type"], resolved["type"]) == ("monitor.fired", "monitor.resolved")
    assert fired["value"] == 0.4 and fired["samples"] == PER_WINDOW and fired["threshold"] == 0.25
    assert fired["monitor"]["metric"] == "eval_label_rate" and "/spans/?q=" in fired["traces_url"]
    for request in receiver.requests[:2]:
        headers = request["headers"]
        mac = hmac.new(
            b"topsecret",
            headers[TIMESTAMP_HEADER].encode() + b"." + request["body"],
            hashlib.sha256,
        ).hexdigest()
        assert headers[SIGNATURE_HEADER] == f"sha256={mac}"

    # The broken channel's deliveries are retried, logged, and held nothing up.
    def retried() -> bool:
        rows = Delivery.objects.filter(channel=broken)
        return rows.count() == 2 and all(d.attempts >= 2 for d in rows)

    wait_for(retried, timeout=60, worker=worker)
    assert {d.last_error for d in Delivery.objects.filter(channel=broken)} == {"answered 500"}
    assert {d.status for d in Delivery.objects.filter(channel=channel)} == {"sent"}

    # The automation put every span judged incorrect into the queue, once.
    wait_for(
        lambda: LabelingQueueItem.objects.filter(queue=queue).count() == sum(PLAN),
        timeout=60,
        worker=worker,
    )
    queued = set(LabelingQueueItem.objects.filter(queue=queue).values_list("span_id", flat=True))
    incorrect = set(
        Annotation.objects.filter(name="correctness", label="incorrect").values_list(
            "span_id", flat=True
        )
    )
    assert queued == incorrect
