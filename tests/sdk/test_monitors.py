"""``client.monitors`` and ``client.automations`` against a live server."""

from __future__ import annotations

import pytest
from django.utils import timezone
from evalhub_client import ValidationError

from annotations.queues.services import queue_create
from annotations.rubrics.services import annotation_config_create
from tests import factories
from tests.evalhub.monitors.helpers import labelled_spans, preview_window_start


def test_monitors_from_the_sdk(client):
    factories.project("shop")
    now = timezone.now()
    for index, bad in enumerate([16, 16, 4]):
        labelled_spans(project="shop", start=preview_window_start(now, 4 - index), total=40,
                       incorrect=bad, seconds=60)  # fmt: skip
    monitor = client.monitors.create(
        "correctness drop", "shop", metric="eval_label_rate", result_name="correctness",
        label="incorrect", threshold=0.25, consecutive=2, window="6h", frequency="5m",
        min_samples=10, filter="span_kind = 'LLM'",
    )  # fmt: skip
    assert (monitor.state, monitor.window_seconds, monitor.frequency_seconds) == ("ok", 21600, 300)
    assert client.monitors.get("correctness drop", project="shop").id == monitor.id
    preview = client.monitors.preview(monitor)
    assert preview.fired_count == 1 and len(preview.points) == 120
    changed = client.monitors.update(monitor, consecutive=3)
    assert changed.raw["consecutive"] == 3
    assert client.monitors.preview(changed).fired_count == 0
    muted = client.monitors.mute(monitor, hours=1)
    assert muted.muted_until is not None
    assert client.monitors.unmute(monitor).muted_until is None
    assert [e["kind"] for e in client.monitors.events(monitor)] == ["unmuted", "muted"]
    assert client.monitors.checks(monitor) == []
    with pytest.raises(ValidationError) as caught:
        client.monitors.create("bad", "shop", metric="error_rate", threshold=2, window="1h")
    assert "threshold" in str(caught.value)
    client.monitors.delete(monitor)
    assert client.monitors.list("shop") == []


def test_automations_from_the_sdk(client):
    factories.project("shop")
    config = annotation_config_create(name="v", kind="CATEGORICAL", values=[{"label": "ok"}])
    queue_create(name="review", item_kind="SPAN", configs=[config])
    rule = client.automations.create(
        "failures", "shop", filter="eval.correctness.label = 'incorrect'", action="queue",
        queue="review", daily_cap=50,
    )  # fmt: skip
    assert (rule.action, rule.daily_cap, rule.hits) == ("queue", 50, 0)
    assert [a.name for a in client.automations.list("shop")] == ["failures"]
    assert client.automations.update(rule, sampling_rate=25).sampling_rate == 25
    client.automations.delete(rule)
    assert client.automations.list("shop") == []
