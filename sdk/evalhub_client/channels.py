"""``client.notification_channels``: where monitors' alerts and automations' webhooks go
(admins' API keys).

>>> hook = client.notification_channels.create(
...     "on-call", kind="webhook", url="https://hooks.example.com/evalhub", secret="s3cret")
>>> client.notification_channels.create("team", kind="email", emails=["a@example.com"])
>>> delivery = client.notification_channels.test("on-call")   # a test message, sent by a worker
>>> client.notification_channels.deliveries("on-call")[0]["status"]
'sent'
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from evalhub_client._http import Transport
from evalhub_client.errors import NotFoundError

PATH = "/v1/notification_channels"


@dataclass(frozen=True)
class NotificationChannel:
    """A channel as the server describes it (``kind``: webhook, slack or email); ``secret`` is
    the webhook's HMAC-SHA256 key; ``raw`` keeps every field."""

    id: int
    name: str
    kind: str
    url: str = ""
    secret: str = ""
    emails: list[str] = field(default_factory=list)
    enabled: bool = True
    created_at: datetime | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, body: Mapping[str, Any]) -> NotificationChannel:
        created = body.get("created_at")
        return cls(
            id=int(body["id"]),
            name=body["name"],
            kind=body["kind"],
            url=body.get("url") or "",
            secret=body.get("secret") or "",
            emails=list(body.get("emails") or []),
            enabled=bool(body.get("enabled", True)),
            created_at=datetime.fromisoformat(created) if isinstance(created, str) else None,
            raw=dict(body),
        )


ChannelRef = NotificationChannel | int | str


def _emails(value: str | Iterable[str]) -> str:
    return value if isinstance(value, str) else "\n".join(value)


class NotificationChannels:
    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    def list(self) -> builtins.list[NotificationChannel]:
        return [NotificationChannel.from_api(c) for c in self._transport.pages(PATH)]

    def channel_id(self, channel: ChannelRef) -> int:
        """The id of a channel given as a ``NotificationChannel``, an id or a name."""
        if isinstance(channel, NotificationChannel):
            return channel.id
        if isinstance(channel, int):
            return channel
        for found in self.list():
            if found.name == channel:
                return found.id
        raise NotFoundError(f"no notification channel named {channel!r}", status_code=404)

    def get(self, channel: ChannelRef) -> NotificationChannel:
        body = self._transport.request("GET", f"{PATH}/{self.channel_id(channel)}")
        return NotificationChannel.from_api(body)

    def create(
        self,
        name: str,
        *,
        kind: str,
        url: str = "",
        secret: str = "",
        emails: str | Iterable[str] = (),
        enabled: bool = True,
    ) -> NotificationChannel:
        """A webhook (``url``; ``secret`` signs each message, one is made when blank), a
        Slack-compatible incoming webhook (``url``) or e-mail (``emails``)."""
        body = {
            "name": name,
            "kind": kind,
            "url": url,
            "secret": secret,
            "emails": _emails(emails),
            "enabled": enabled,
        }
        return NotificationChannel.from_api(self._transport.request("POST", PATH, json=body))

    def update(self, channel: ChannelRef, **fields: Any) -> NotificationChannel:
        """Change some of ``name``, ``kind``, ``url``, ``secret``, ``emails``, ``enabled``; the
        others keep their values (a webhook keeps its secret unless one is given)."""
        current = self.get(channel)
        body: dict[str, Any] = {
            "name": current.name,
            "kind": current.kind,
            "url": current.url,
            "secret": "",
            "emails": "\n".join(current.emails),
            "enabled": current.enabled,
        }
        if "emails" in fields:
            fields["emails"] = _emails(fields["emails"])
        body |= fields
        answer = self._transport.request("PUT", f"{PATH}/{current.id}", json=body)
        return NotificationChannel.from_api(answer)

    def delete(self, channel: ChannelRef) -> None:
        self._transport.request("DELETE", f"{PATH}/{self.channel_id(channel)}")

    def test(self, channel: ChannelRef) -> dict[str, Any]:
        """Send a test message; the answer is its delivery (``status`` ``pending`` until a
        worker has sent it — follow it with ``deliveries``)."""
        path = f"{PATH}/{self.channel_id(channel)}/test"
        return dict(self._transport.request("POST", path))

    def deliveries(self, channel: ChannelRef) -> builtins.list[dict[str, Any]]:
        """The delivery log, newest first: type, status, attempts, response status, last
        error."""
        path = f"{PATH}/{self.channel_id(channel)}/deliveries"
        return list(self._transport.request("GET", path)["data"])


__all__ = ["NotificationChannel", "NotificationChannels"]
