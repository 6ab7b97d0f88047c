"""REST routes for notification channels (``/v1/notification_channels``, admins): create, list,
read, change, delete, send a test message, and the delivery log. Included in the monitors'
router (``evalhub.monitors.api``)."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.http import HttpRequest
from ninja import Field, Router, Status
from ninja.errors import HttpError

from evalhub.core.paging import Page, Pages, page_by_text, paged
from evalhub.monitors import selectors
from evalhub.monitors.api_common import Strict, saved, when
from evalhub.monitors.channels import (
    ChannelInput,
    channel_create,
    channel_delete,
    channel_update,
    delivery_test_create,
)
from evalhub.monitors.models import Delivery, NotificationChannel

router = Router(tags=["notification channels"])


class ChannelIn(Strict):
    name: str
    kind: str = Field(..., description="webhook, slack or email")
    url: str = ""
    secret: str = Field("", description="Webhooks: the HMAC-SHA256 key (blank: one is made)")
    emails: str = Field("", description="E-mail: addresses, one a line")
    enabled: bool = True


def _channel(channel_id: int) -> NotificationChannel:
    channel = NotificationChannel.objects.filter(pk=channel_id).first()
    if channel is None:
        raise HttpError(404, f"no notification channel #{channel_id}")
    return channel


def channel_out(channel: NotificationChannel) -> dict[str, Any]:
    return {
        "id": channel.pk,
        "name": channel.name,
        "kind": channel.kind,
        "url": channel.url,
        "secret": channel.secret,
        "emails": [e for e in channel.emails.splitlines() if e],
        "enabled": channel.enabled,
        "created_at": when(channel.created_at),
    }


@router.get("/notification_channels", response=list[dict[str, Any]])
@paged()
def channels_list(request: HttpRequest) -> Pages:
    """Every notification channel by name, a page at a time."""

    def pages(*, cursor: str | None, limit: int) -> Page[dict[str, Any]]:
        query = selectors.channel_list()
        return page_by_text(query, cursor=cursor, limit=limit, field="name").map(channel_out)

    return pages


@router.post("/notification_channels", response={201: dict, 409: dict, 422: dict})
def channels_create(request: HttpRequest, body: ChannelIn) -> Status:
    return saved(
        lambda: channel_create(data=ChannelInput(**body.model_dump())),
        lambda channel: Status(201, channel_out(channel)),
    )


@router.get("/notification_channels/{channel_id}", response={200: dict, 404: dict})
def channels_get(request: HttpRequest, channel_id: int) -> dict[str, Any]:
    return channel_out(_channel(channel_id))


@router.put(
    "/notification_channels/{channel_id}", response={200: dict, 404: dict, 409: dict, 422: dict}
)
def channels_update(request: HttpRequest, channel_id: int, body: ChannelIn) -> Any:
    return saved(
        lambda: channel_update(
            channel=_channel(channel_id), data=ChannelInput(**body.model_dump())
        ),
        channel_out,
    )


@router.delete("/notification_channels/{channel_id}", response={204: None, 404: dict})
def channels_delete(request: HttpRequest, channel_id: int) -> Status:
    channel_delete(channel=_channel(channel_id))
    return Status(204, None)


@router.post("/notification_channels/{channel_id}/test", response={202: dict, 404: dict})
def channels_test(request: HttpRequest, channel_id: int) -> Status:
    """A test message to the channel, sent by its task as an alert is (retried, logged):
    the answer is the delivery, to follow in the delivery log."""
    with transaction.atomic():
        delivery = delivery_test_create(channel=_channel(channel_id))
    return Status(202, delivery_out(delivery))


def delivery_out(delivery: Delivery) -> dict[str, Any]:
    return {
        "id": delivery.pk,
        "type": delivery.payload.get("type"),
        "status": delivery.status,
        "attempts": delivery.attempts,
        "response_status": delivery.response_status,
        "last_error": delivery.last_error,
        "created_at": when(delivery.created_at),
        "sent_at": when(delivery.sent_at),
    }


@router.get("/notification_channels/{channel_id}/deliveries", response={200: dict, 404: dict})
def channels_deliveries(request: HttpRequest, channel_id: int) -> dict[str, Any]:
    """The delivery log: each message, its status, attempts and last error, newest first."""
    channel = _channel(channel_id)
    return {"data": [delivery_out(d) for d in selectors.delivery_log(channel=channel, limit=500)]}
