"""Notification channels (admins configure them) and the delivery of a message to one, with
its log: each attempt counted, the last error kept, retried with back-off by its task."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone

from evalhub.core.fields import FieldInvalid, NameTaken, save_named
from evalhub.core.jobs import job_send
from evalhub.monitors.models import ChannelKind, Delivery, DeliveryStatus, NotificationChannel
from evalhub.monitors.notify import DeliveryFailed, channel_send

MAX_EMAILS: Final = 50

# The Celery task sending one message (evalhub.monitors.jobs).
DELIVERY_SEND = "monitors.delivery_send"


class ChannelInvalid(FieldInvalid):
    """A channel that cannot be stored; ``field`` names the input."""


class ChannelNameTaken(NameTaken):
    noun = "notification channel"


@dataclass
class ChannelInput:
    name: str
    kind: str
    url: str = ""
    secret: str = ""
    emails: str = ""
    enabled: bool = True


def channel_clean(data: ChannelInput) -> ChannelInput:
    from evalhub.core.outbound import OutboundDenied, outbound_url_check

    data.name = data.name.strip() if isinstance(data.name, str) else ""
    if not data.name:
        raise ChannelInvalid(field="name", message="must not be empty")
    if len(data.name) > 200:
        raise ChannelInvalid(field="name", message="is longer than 200 characters")
    if data.kind not in ChannelKind.values:
        raise ChannelInvalid(
            field="kind", message=f"must be one of {', '.join(ChannelKind.values)}"
        )
    if data.kind == ChannelKind.EMAIL:
        addresses = [a.strip() for a in (data.emails or "").replace(",", "\n").splitlines()]
        addresses = [a for a in addresses if a]
        if not addresses:
            raise ChannelInvalid(field="emails", message="give at least one address")
        if len(addresses) > MAX_EMAILS:
            raise ChannelInvalid(field="emails", message=f"at most {MAX_EMAILS} addresses")
        for address in addresses:
            try:
                validate_email(address)
            except ValidationError:
                raise ChannelInvalid(
                    field="emails", message=f"{address!r} is not an address"
                ) from None
        data.emails, data.url, data.secret = "\n".join(addresses), "", ""
        return data
    data.url = (data.url or "").strip()
    if not data.url:
        raise ChannelInvalid(field="url", message="must not be empty")
    if len(data.url) > 2000:
        raise ChannelInvalid(field="url", message="is longer than 2000 characters")
    try:
        outbound_url_check(data.url)
    except OutboundDenied as exc:
        raise ChannelInvalid(field="url", message=exc.message) from None
    data.emails = ""
    if data.kind == ChannelKind.WEBHOOK:
        data.secret = (data.secret or "").strip() or secrets.token_urlsafe(32)
    else:
        data.secret = ""
    return data


@transaction.atomic
def channel_create(*, data: ChannelInput) -> NotificationChannel:
    """A new channel; a webhook without a secret gets a random one (shown to the admin)."""
    data = channel_clean(data)
    if NotificationChannel.objects.filter(name=data.name).exists():
        raise ChannelNameTaken(data.name)
    channel = NotificationChannel(**data.__dict__)
    save_named(channel, taken=ChannelNameTaken)
    return channel


@transaction.atomic
def channel_update(*, channel: NotificationChannel, data: ChannelInput) -> NotificationChannel:
    if not (data.secret or "").strip() and channel.kind == data.kind:
        data.secret = channel.secret  # a blank secret keeps the one there is
    data = channel_clean(data)
    if NotificationChannel.objects.filter(name=data.name).exclude(pk=channel.pk).exists():
        raise ChannelNameTaken(data.name)
    for name, value in data.__dict__.items():
        setattr(channel, name, value)
    save_named(channel, taken=ChannelNameTaken)
    return channel


@transaction.atomic
def channel_delete(*, channel: NotificationChannel) -> None:
    channel.delete()


def backoff_seconds(attempt: int) -> int:
    """Seconds before attempt ``attempt + 1``: the base doubled each time, at most an hour."""
    base = int(settings.EVALHUB_WEBHOOK_BACKOFF_SECONDS)
    return min(3600, base * 2 ** max(attempt - 1, 0))


LEASE_MARGIN_SECONDS: Final = 30
SWEEP_AFTER_SECONDS: Final = 60


def delivery_attempt(*, delivery_id: int, now: datetime | None = None) -> int | None:
    """Try to send a delivery once. Returns None when there is nothing more to do (sent,
    failed for good, or not due: another message has it), else the seconds to wait before the
    next attempt. A delivery already sent is not sent again (a redelivered task), and one whose
    attempt is running elsewhere (its lease, ``next_attempt_at``, not reached) is left alone."""
    now = now or timezone.now()
    with transaction.atomic():
        delivery = (
            Delivery.objects.select_for_update(of=("self",))
            .select_related("channel")
            .filter(pk=delivery_id)
            .first()
        )
        if delivery is None or delivery.status != DeliveryStatus.PENDING:
            return None
        if delivery.next_attempt_at > now + timedelta(seconds=1):
            return None
        delivery.attempts += 1
        lease = settings.EVALHUB_WEBHOOK_TIMEOUT_SECONDS + LEASE_MARGIN_SECONDS
        delivery.next_attempt_at = now + timedelta(seconds=lease)
        delivery.save(update_fields=["attempts", "next_attempt_at"])
    # The request is made outside the transaction: a slow channel holds no lock.
    try:
        status = channel_send(delivery.channel, delivery.payload)
    except DeliveryFailed as exc:
        final = delivery.attempts >= settings.EVALHUB_WEBHOOK_MAX_ATTEMPTS
        wait = backoff_seconds(delivery.attempts)
        Delivery.objects.filter(pk=delivery.pk).update(
            last_error=str(exc)[:2000],
            response_status=exc.status,
            status=DeliveryStatus.FAILED if final else DeliveryStatus.PENDING,
            next_attempt_at=timezone.now() + timedelta(seconds=wait),
        )
        return None if final else wait
    Delivery.objects.filter(pk=delivery.pk).update(
        status=DeliveryStatus.SENT, response_status=status, sent_at=timezone.now(), last_error=""
    )
    return None


def deliveries_stale(*, now: datetime | None = None) -> list[int]:
    """Pending deliveries whose attempt is overdue by a minute: their message was lost (a
    process died between the commit and the send, or with the retry's message)."""
    now = now or timezone.now()
    overdue = now - timedelta(seconds=SWEEP_AFTER_SECONDS)
    return list(
        Delivery.objects.filter(status=DeliveryStatus.PENDING, next_attempt_at__lt=overdue)
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:500]
    )


def delivery_test_create(*, channel: NotificationChannel) -> Delivery:
    """A test message to ``channel`` (the Settings page's "Send a test")."""
    payload = {
        "type": "test",
        "text": f"EvalHub test message to the channel {channel.name!r}.",
    }
    delivery = Delivery.objects.create(channel=channel, payload=payload)
    transaction.on_commit(lambda: job_send(DELIVERY_SEND, delivery.pk))
    return delivery


def notification_send(
    *, channels: Sequence[NotificationChannel], payload: dict[str, Any]
) -> list[int]:
    """A message from elsewhere in the hub (a budget's warning) to ``channels``: one delivery
    each, sent after the commit by its task with the alerts' retries and log. The ids."""
    deliveries = [
        Delivery.objects.create(channel=channel, payload=payload)
        for channel in channels
        if channel.enabled
    ]
    return deliveries_send(deliveries)


def deliveries_send(deliveries: Sequence[Delivery]) -> list[int]:
    """Send ``deliveries`` once the current transaction commits, each by its own task (a slow
    channel holds up nothing). Their ids."""
    ids = [d.pk for d in deliveries]

    def send() -> None:
        for pk in ids:
            job_send(DELIVERY_SEND, pk)

    if ids:
        transaction.on_commit(send)
    return ids


__all__ = [
    "ChannelInput",
    "ChannelInvalid",
    "ChannelNameTaken",
    "backoff_seconds",
    "channel_clean",
    "channel_create",
    "channel_delete",
    "channel_update",
    "deliveries_send",
    "deliveries_stale",
    "delivery_attempt",
    "delivery_test_create",
    "notification_send",
]
