"""Notification channels: signed webhooks, the Slack format, e-mail, retries with back-off and
the delivery log, and addresses refused by the outbound deny-list."""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from evalhub.monitors.channels import (
    ChannelInput,
    ChannelInvalid,
    backoff_seconds,
    channel_create,
    delivery_attempt,
)
from evalhub.monitors.models import Delivery, DeliveryStatus
from evalhub.monitors.notify import SIGNATURE_HEADER, TIMESTAMP_HEADER

pytestmark = pytest.mark.django_db
PAYLOAD = {"type": "monitor.fired", "text": "[FIRING] default / drop: 40 %", "value": 0.4}


def _delivery(channel) -> Delivery:
    return Delivery.objects.create(channel=channel, payload=PAYLOAD)


def test_a_webhook_gets_the_json_body_signed_with_its_secret(receiver):
    channel = channel_create(
        data=ChannelInput(name="ops", kind="webhook", url=receiver.url, secret="s3cret")
    )
    delivery = _delivery(channel)
    assert delivery_attempt(delivery_id=delivery.pk) is None
    (request,) = receiver.requests
    body, headers = request["body"], request["headers"]
    expected = hmac.new(
        b"s3cret", headers[TIMESTAMP_HEADER].encode() + b"." + body, hashlib.sha256
    ).hexdigest()
    assert headers[SIGNATURE_HEADER] == f"sha256={expected}"
    assert receiver.json() == PAYLOAD
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.response_status) == ("sent", 1, 200)
    # Sent once: a redelivered task sends nothing again.
    assert delivery_attempt(delivery_id=delivery.pk) is None and len(receiver.requests) == 1


def test_a_webhook_without_a_secret_gets_one():
    channel = channel_create(data=ChannelInput(name="ops", kind="webhook", url="http://127.0.0.1/"))
    assert len(channel.secret) >= 32


def test_slack_gets_its_text_format(receiver):
    channel = channel_create(data=ChannelInput(name="slack", kind="slack", url=receiver.url))
    delivery_attempt(delivery_id=_delivery(channel).pk)
    assert receiver.json() == {"text": PAYLOAD["text"]}
    assert SIGNATURE_HEADER not in receiver.requests[0]["headers"]


def test_email_goes_through_the_mail_backend():
    channel = channel_create(
        data=ChannelInput(name="mail", kind="email", emails="a@example.com\nb@example.com")
    )
    delivery_attempt(delivery_id=_delivery(channel).pk)
    (message,) = mail.outbox
    assert message.to == ["a@example.com", "b@example.com"]
    assert message.subject == "[FIRING] default / drop" and "40 %" in message.body


def test_a_500_is_retried_with_back_off_then_given_up(receiver, settings):
    settings.EVALHUB_WEBHOOK_MAX_ATTEMPTS = 3
    settings.EVALHUB_WEBHOOK_BACKOFF_SECONDS = 10
    receiver.statuses.extend([500, 500, 500])
    channel = channel_create(data=ChannelInput(name="ops", kind="webhook", url=receiver.url))
    delivery = _delivery(channel)
    start = timezone.now()
    assert delivery_attempt(delivery_id=delivery.pk, now=start) == 10
    # Not due yet: a duplicate message sends nothing.
    assert delivery_attempt(delivery_id=delivery.pk, now=start) is None
    assert len(receiver.requests) == 1
    assert delivery_attempt(delivery_id=delivery.pk, now=start + timedelta(seconds=11)) == 20
    delivery.refresh_from_db()
    assert (delivery.status, delivery.response_status, delivery.last_error) == (
        DeliveryStatus.PENDING,
        500,
        "answered 500",
    )
    assert delivery_attempt(delivery_id=delivery.pk, now=start + timedelta(seconds=32)) is None
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.FAILED, 3)
    assert backoff_seconds(30) == 3600


def test_a_timeout_is_a_failed_attempt(receiver, settings):
    settings.EVALHUB_WEBHOOK_TIMEOUT_SECONDS = 1
    receiver.delay = 2.5
    channel = channel_create(data=ChannelInput(name="ops", kind="webhook", url=receiver.url))
    delivery = _delivery(channel)
    assert delivery_attempt(delivery_id=delivery.pk) is not None
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING and "Timeout" in delivery.last_error


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (ChannelInput(name="m", kind="webhook", url="http://169.254.169.254/latest"), "url"),
        (ChannelInput(name="m", kind="webhook", url="ftp://example.com/"), "url"),
        (ChannelInput(name="m", kind="slack", url=""), "url"),
        (ChannelInput(name="m", kind="email", emails="not an address"), "emails"),
        (ChannelInput(name="m", kind="pager", url="http://127.0.0.1/"), "kind"),
        (ChannelInput(name=" ", kind="webhook", url="http://127.0.0.1/"), "name"),
    ],
)
def test_bad_channels_name_the_field(data, field):
    with pytest.raises(ChannelInvalid) as caught:
        channel_create(data=data)
    assert caught.value.field == field


def test_a_delivery_whose_message_was_lost_is_swept_and_never_sent_twice(receiver):
    from evalhub.monitors.channels import deliveries_stale

    channel = channel_create(data=ChannelInput(name="ops", kind="webhook", url=receiver.url))
    delivery = _delivery(channel)
    now = timezone.now()
    assert deliveries_stale(now=now) == []
    # Its message never reached a worker: a minute past due, the sweep picks it up.
    assert deliveries_stale(now=now + timedelta(seconds=61)) == [delivery.pk]
    # An attempt in flight holds a lease: a second message for it does nothing.
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=now + timedelta(seconds=30))
    assert delivery_attempt(delivery_id=delivery.pk, now=now) is None
    assert receiver.requests == []
    assert delivery_attempt(delivery_id=delivery.pk, now=now + timedelta(seconds=31)) is None
    assert len(receiver.requests) == 1
    assert deliveries_stale(now=now + timedelta(days=1)) == []  # sent
