"""``client.notification_channels`` against a live server: create, list, get, update, delete,
a test message (sent as a worker sends it, to a local receiver) and the delivery log."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator

import pytest
from evalhub_client import (
    AuthenticationError,
    Client,
    EvalHubError,
    NotFoundError,
    ValidationError,
)

from evalhub.monitors.channels import delivery_attempt
from evalhub.monitors.notify import SIGNATURE_HEADER, TIMESTAMP_HEADER
from tests import factories
from tests.evalhub.monitors.receiver import Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver().start()
    yield server
    server.stop()


def test_notification_channels_from_the_sdk(client, receiver):
    channels = client.notification_channels
    hook = channels.create("on-call", kind="webhook", url=receiver.url, secret="topsecret")
    assert (hook.kind, hook.url, hook.secret, hook.enabled) == (
        "webhook", receiver.url, "topsecret", True
    )  # fmt: skip
    mail = channels.create("team", kind="email", emails=["a@example.com", "b@example.com"])
    assert mail.emails == ["a@example.com", "b@example.com"] and mail.url == ""
    slack = channels.create("chat", kind="slack", url=receiver.url)
    assert slack.secret == ""
    assert sorted(c.name for c in channels.list()) == ["chat", "on-call", "team"]
    assert channels.get("on-call").id == hook.id == channels.get(hook.id).id

    # Changed in part: the rest (the webhook's secret too) is kept.
    changed = channels.update(hook, name="pager")
    assert (changed.name, changed.url, changed.secret) == ("pager", receiver.url, "topsecret")
    assert channels.update(mail, emails=["c@example.com"]).emails == ["c@example.com"]
    assert channels.update("chat", enabled=False).enabled is False

    # A test message: a delivery the worker sends (here: what its task does), signed.
    delivery = channels.test("pager")
    assert (delivery["type"], delivery["status"], delivery["attempts"]) == ("test", "pending", 0)
    assert [d["id"] for d in channels.deliveries("pager")] == [delivery["id"]]
    assert delivery_attempt(delivery_id=delivery["id"]) is None
    (sent,) = channels.deliveries("pager")
    assert (sent["status"], sent["attempts"], sent["response_status"]) == ("sent", 1, 200)
    (request,) = receiver.requests
    body = json.loads(request["body"])
    assert body["type"] == "test" and "pager" in body["text"]
    mac = hmac.new(
        b"topsecret",
        request["headers"][TIMESTAMP_HEADER].encode() + b"." + request["body"],
        hashlib.sha256,
    ).hexdigest()
    assert request["headers"][SIGNATURE_HEADER] == f"sha256={mac}"

    channels.delete("team")
    assert sorted(c.name for c in channels.list()) == ["chat", "pager"]
    with pytest.raises(NotFoundError):
        channels.get(mail.id)
    with pytest.raises(NotFoundError):
        channels.test("team")


def test_bad_channels_are_refused_naming_the_field(client):
    channels = client.notification_channels
    with pytest.raises(ValidationError) as caught:
        channels.create("x", kind="pigeon", url="http://127.0.0.1:9/x")
    assert "kind" in str(caught.value)
    with pytest.raises(ValidationError) as caught:
        channels.create("x", kind="email", emails=["not an address"])
    assert "emails" in str(caught.value)
    with pytest.raises(ValidationError) as caught:
        channels.create("x", kind="webhook")
    assert "url" in str(caught.value)
    channels.create("ops", kind="slack", url="http://127.0.0.1:9/x")
    with pytest.raises(EvalHubError) as caught:
        channels.create("ops", kind="slack", url="http://127.0.0.1:9/y")
    assert caught.value.status_code == 409 and "name" in str(caught.value)
    assert [c.name for c in channels.list()] == ["ops"]


def test_channels_are_for_admins(live_server, client):
    client.notification_channels.create("ops", kind="slack", url="http://127.0.0.1:9/x")
    key = factories.api_key("writer", scope="write")
    with Client(base_url=live_server.url, api_key=key) as writer:
        with pytest.raises(AuthenticationError):
            writer.notification_channels.list()
        with pytest.raises(AuthenticationError):
            writer.notification_channels.test(1)
