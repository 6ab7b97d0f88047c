"""The REST API of monitors, notification channels and automations: create, read, change,
mute, the would-have-fired preview, history, the delivery log; bad configuration answers 422
naming the field; channels are for admins."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from annotations.queues.services import queue_create
from annotations.rubrics.services import annotation_config_create
from evalhub.monitors.checks import monitor_check
from evalhub.monitors.models import Monitor
from tests import factories
from tests.evalhub.monitors.helpers import labelled_spans, preview_window_start
from tests.factories import BASE_TIME

pytestmark = pytest.mark.django_db

MONITOR = {
    "name": "correctness drop",
    "project": "default",
    "metric": "eval_label_rate",
    "result_name": "correctness",
    "label": "incorrect",
    "condition": "threshold",
    "threshold": 0.25,
    "consecutive": 2,
    "window_seconds": 300,
    "frequency_seconds": 300,
    "delay_seconds": 0,
    "min_samples": 10,
    "filter": "span_kind = 'LLM'",
}


def _post(client, auth, path, body):
    return client.post(path, data=json.dumps(body), content_type="application/json", headers=auth)


@pytest.fixture
def project(db):
    return factories.project("default")


def test_create_read_change_mute_and_delete_a_monitor(client, auth, project):
    channel = _post(
        client, auth, "/v1/notification_channels",
        {"name": "ops", "kind": "webhook", "url": "http://127.0.0.1:9/hook"},
    )  # fmt: skip
    assert channel.status_code == 201 and len(channel.json()["secret"]) >= 32
    created = _post(client, auth, "/v1/monitors", {**MONITOR, "channels": ["ops"]})
    assert created.status_code == 201, created.content
    body = created.json()
    assert (body["state"], body["channels"], body["threshold"]) == ("ok", ["ops"], 0.25)
    monitor_id = body["id"]
    listed = client.get("/v1/monitors?project=default", headers=auth).json()["data"]
    assert [m["name"] for m in listed] == ["correctness drop"]
    changed = client.patch(
        f"/v1/monitors/{monitor_id}", data=json.dumps({"threshold": 0.3, "consecutive": 3}),
        content_type="application/json", headers=auth,
    )  # fmt: skip
    assert changed.status_code == 200 and changed.json()["threshold"] == 0.3
    assert changed.json()["consecutive"] == 3 and changed.json()["channels"] == ["ops"]
    until = (timezone.now() + timedelta(hours=2)).isoformat()
    muted = _post(client, auth, f"/v1/monitors/{monitor_id}/mute", {"until": until})
    assert muted.status_code == 200 and muted.json()["muted_until"] is not None
    events = client.get(f"/v1/monitors/{monitor_id}/events", headers=auth).json()["data"]
    assert [e["kind"] for e in events] == ["muted"]
    assert client.delete(f"/v1/monitors/{monitor_id}", headers=auth).status_code == 204
    assert client.get(f"/v1/monitors/{monitor_id}", headers=auth).status_code == 404


def test_checks_and_history_of_a_monitor_that_fired(client, auth, project):
    for index, bad in enumerate([16, 16]):
        labelled_spans(
            start=BASE_TIME + timedelta(seconds=300 * index + 1), total=40, incorrect=bad
        )
    monitor_id = _post(client, auth, "/v1/monitors", MONITOR).json()["id"]
    Monitor.objects.filter(pk=monitor_id).update(created_at=BASE_TIME)
    monitor_check(monitor_id=monitor_id, now=BASE_TIME + timedelta(seconds=600))
    checks = client.get(f"/v1/monitors/{monitor_id}/checks", headers=auth).json()["data"]
    assert [(c["status"], c["value"], c["samples"]) for c in checks] == [
        ("breach", 0.4, 40), ("breach", 0.4, 40)
    ]  # fmt: skip
    (fired,) = client.get(f"/v1/monitors/{monitor_id}/events", headers=auth).json()["data"]
    assert fired["kind"] == "fired" and fired["payload"]["samples"] == 40
    assert client.get(f"/v1/monitors/{monitor_id}", headers=auth).json()["state"] == "firing"


def test_the_preview_says_when_it_would_have_fired(client, auth, project):
    now = timezone.now()
    step = 30 * 86400 // 120
    for index, bad in enumerate([16, 16, 4]):
        labelled_spans(start=preview_window_start(now, 4 - index), total=40, incorrect=bad,
                       seconds=60)  # fmt: skip
    response = _post(client, auth, "/v1/monitors/preview", {**MONITOR, "window_seconds": step})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["fired_count"] == 1 and len(body["points"]) == 120
    assert not Monitor.objects.exists()


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"windw_seconds": 300}, "windw_seconds", "Extra inputs"),
        ({"window_seconds": 0}, "window_seconds", "must not be empty"),
        ({"threshold": 7}, "threshold", "between 0 and 1"),
        ({"filter": "eval.correctness.lable = 'x'"}, "filter", "lable"),
        ({"segment_field": "tags"}, "segment_field", "cannot segment"),
        ({"channels": ["nowhere"]}, "channels", "nowhere"),
    ],
)
def test_bad_configuration_is_a_422_naming_the_field(client, auth, project, changes, field, words):
    response = _post(client, auth, "/v1/monitors", {**MONITOR, **changes})
    assert response.status_code == 422, response.content
    assert field in response.json()["detail"] and words in response.json()["detail"]
    assert not Monitor.objects.exists()


def test_a_name_taken_is_a_409(client, auth, project):
    assert _post(client, auth, "/v1/monitors", MONITOR).status_code == 201
    response = _post(client, auth, "/v1/monitors", MONITOR)
    assert response.status_code == 409 and "already exists" in response.json()["detail"]


def test_channels_are_for_admins(client, project):
    write = {"Authorization": f"Bearer {factories.api_key('w', scope='write')}"}
    assert client.get("/v1/notification_channels", headers=write).status_code == 403
    response = _post(
        client, write, "/v1/notification_channels",
        {"name": "x", "kind": "webhook", "url": "http://127.0.0.1:9/"},
    )  # fmt: skip
    assert response.status_code == 403
    # …while a write key may create monitors.
    assert _post(client, write, "/v1/monitors", MONITOR).status_code == 201


def test_a_denied_webhook_address_is_refused(client, auth):
    response = _post(
        client, auth, "/v1/notification_channels",
        {"name": "meta", "kind": "webhook", "url": "http://169.254.169.254/latest/meta-data"},
    )  # fmt: skip
    assert response.status_code == 422 and response.json()["field"] == "url"


def test_automations_through_the_api(client, auth, project):
    config = annotation_config_create(name="v", kind="CATEGORICAL", values=[{"label": "ok"}])
    queue_create(name="review", item_kind="SPAN", configs=[config])
    rule = {
        "name": "failures",
        "project": "default",
        "filter": "eval.correctness.label = 'incorrect'",
        "action": "queue",
        "queue": "review",
        "sampling_rate": 50,
        "daily_cap": 100,
    }
    created = _post(client, auth, "/v1/automations", rule)
    assert created.status_code == 201, created.content
    assert created.json()["queue"] == "review" and created.json()["hits"] == 0
    listed = client.get("/v1/automations?project=default", headers=auth).json()["data"]
    assert [a["name"] for a in listed] == ["failures"]
    bad = _post(client, auth, "/v1/automations", {**rule, "name": "b", "queue": "nope"})
    assert bad.status_code == 422 and bad.json()["field"] == "queue"
    bad = _post(client, auth, "/v1/automations", {**rule, "name": "b", "daily_cap": 0})
    assert bad.status_code == 422 and bad.json()["field"] == "daily_cap"
    automation_id = created.json()["id"]
    changed = client.put(
        f"/v1/automations/{automation_id}", data=json.dumps({**rule, "action": "tag", "tag": "x"}),
        content_type="application/json", headers=auth,
    )  # fmt: skip
    assert changed.status_code == 200 and changed.json()["tag"] == "x"
    assert changed.json()["queue"] is None
    assert client.delete(f"/v1/automations/{automation_id}", headers=auth).status_code == 204


def test_the_lists_are_paged_and_a_forged_cursor_is_a_400(client, auth, project):
    for name in ["gamma", "alpha", "beta"]:
        body = {"name": name, "kind": "webhook", "url": "http://127.0.0.1:9/hook"}
        assert _post(client, auth, "/v1/notification_channels", body).status_code == 201
        assert _post(client, auth, "/v1/monitors", {**MONITOR, "name": name}).status_code == 201
    names, cursor = [], None
    while True:
        query = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = client.get("/v1/notification_channels", query, headers=auth).json()
        names += [c["name"] for c in page["data"]]
        if not (cursor := page["next_cursor"]):
            break
    assert names == ["alpha", "beta", "gamma"]
    first = client.get("/v1/monitors", {"limit": 2}, headers=auth).json()
    rest = client.get("/v1/monitors", {"cursor": first["next_cursor"]}, headers=auth).json()
    assert [m["name"] for m in first["data"] + rest["data"]] == ["gamma", "alpha", "beta"]
    for path in ("/v1/notification_channels", "/v1/monitors"):
        for forged in ("AA", "%%%", "abc"):
            answer = client.get(path, {"cursor": forged}, headers=auth)
            assert answer.status_code == 400 and "cursor" in answer.json()["detail"]
