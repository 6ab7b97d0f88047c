"""Alert messages and their delivery to channels.

The generic webhook receives this JSON body (``docs/monitors.md``)::

    {"type": "monitor.fired" | "monitor.resolved" | "automation.matched",
     "monitor": {"id", "name", "project", "metric", "condition", "url"},
     "window": {"start", "end"}, "value", "threshold", "baseline_value", "samples",
     "baseline_samples", "p_value", "segment", "segment_field", "traces_url", "text"}

signed with HMAC-SHA256 of ``<timestamp>.<body>`` under the channel's secret, in the headers
``X-EvalHub-Timestamp`` and ``X-EvalHub-Signature: sha256=<hex>``. A Slack channel gets
``{"text": ...}`` (an incoming webhook's format), an e-mail channel a plain-text mail. Every
request goes through ``evalhub.core.outbound`` (the SSRF deny-list).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import datetime
from typing import Any, Final
from urllib.parse import urlencode

from django.conf import settings
from django.core.mail import send_mail
from django.urls import reverse

from evalhub.monitors.metrics import RATE_METRICS
from evalhub.monitors.models import (
    ChannelKind,
    Condition,
    EventKind,
    Metric,
    Monitor,
    MonitorCheck,
    NotificationChannel,
)
from tracing.browser.filters import quote

SIGNATURE_HEADER: Final = "X-EvalHub-Signature"
TIMESTAMP_HEADER: Final = "X-EvalHub-Timestamp"


class DeliveryFailed(Exception):
    """A channel refused or did not answer; ``status`` is the HTTP status when there was one."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>``: HMAC-SHA256 of ``<timestamp>.<body>`` under ``secret``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def _absolute(path: str) -> str:
    return settings.EVALHUB_BASE_URL.rstrip("/") + path


def _moment(value: datetime) -> str:
    return value.isoformat()


def traces_url(
    *, project: str, filter_text: str, start: datetime, end: datetime, segment_clause: str = ""
) -> str:
    """The trace browser's Spans tab showing the window's spans under the monitor's filter
    (and segment): the window is written into the filter, so it is exact to the second."""
    clauses = [f"({filter_text})"] if filter_text.strip() else []
    if segment_clause:
        clauses.append(segment_clause)
    clauses += [f"start_time >= {quote(_moment(start))}", f"start_time < {quote(_moment(end))}"]
    path = reverse("tracing:spans", kwargs={"project": project})
    return _absolute(path) + "?" + urlencode({"q": " and ".join(clauses), "range": "all"})


def segment_clause(field: str, segment: str) -> str:
    if not field or not segment:
        return ""
    if segment == "(none)":
        return f"{field} IS NULL"
    return f"{field} = {quote(segment)}"


def _format(metric: str, value: float | None) -> str:
    if value is None:
        return "n/a"
    if metric in RATE_METRICS:
        return f"{value * 100:.1f} %"
    if metric == Metric.COST:
        return f"${value:,.4f}"
    return (
        f"{value:,.3f}".rstrip("0").rstrip(".")
        if not float(value).is_integer()
        else f"{value:,.0f}"
    )


def alert_payload(
    *, monitor: Monitor, check: MonitorCheck, kind: str, segment: str
) -> dict[str, Any]:
    """The message of a fired or resolved alert (the webhook body; ``text`` for people)."""
    segment_row = next((s for s in check.segments if s["segment"] == segment), None)
    value = segment_row["value"] if segment_row else check.value
    samples = segment_row["samples"] if segment_row else check.samples
    base = segment_row["baseline_value"] if segment_row else check.baseline_value
    base_n = segment_row["baseline_samples"] if segment_row else check.baseline_samples
    p_value = segment_row["p_value"] if segment_row else check.p_value
    what = Metric(monitor.metric).label
    if monitor.result_name:
        what += f" of {monitor.result_name}" + (f" = {monitor.label!r}" if monitor.label else "")
    against = (
        f"threshold {_format(monitor.metric, monitor.threshold)}"
        if monitor.condition == Condition.THRESHOLD
        else f"baseline {_format(monitor.metric, base)} (n={base_n}, p={p_value:.2g})"
        if p_value is not None
        else f"baseline {_format(monitor.metric, base)} (n={base_n})"
    )
    where = f" [{monitor.segment_field} = {segment}]" if monitor.segment_field and segment else ""
    verb = "FIRING" if kind == EventKind.FIRED else "RESOLVED"
    link = traces_url(
        project=monitor.project.name,
        filter_text=monitor.filter,
        start=check.window_start,
        end=check.window_end,
        segment_clause=segment_clause(monitor.segment_field, segment),
    )
    text = (
        f"[{verb}] {monitor.project.name} / {monitor.name}{where}: {what} = "
        f"{_format(monitor.metric, value)} (n={samples}) vs {against}, "
        f"window {check.window_start:%Y-%m-%d %H:%M:%S} to {check.window_end:%H:%M:%S} UTC. {link}"
    )
    return {
        "type": f"monitor.{kind}",
        "monitor": {
            "id": monitor.pk,
            "name": monitor.name,
            "project": monitor.project.name,
            "metric": monitor.metric,
            "result_name": monitor.result_name,
            "label": monitor.label,
            "condition": monitor.condition,
            "direction": monitor.direction,
            "filter": monitor.filter,
            "url": _absolute(reverse("monitors:detail", kwargs={"monitor_id": monitor.pk})),
        },
        "window": {"start": _moment(check.window_start), "end": _moment(check.window_end)},
        "value": value,
        "threshold": monitor.threshold,
        "baseline_value": base,
        "samples": samples,
        "baseline_samples": base_n,
        "p_value": p_value,
        "segment_field": monitor.segment_field,
        "segment": segment,
        "traces_url": link,
        "text": text,
    }


def channel_send(channel: NotificationChannel, payload: dict[str, Any]) -> int | None:
    """Send ``payload`` to ``channel``; the HTTP status (None for e-mail). Raises
    ``DeliveryFailed`` for an answer other than 2xx, a timeout or a refused address."""
    if channel.kind == ChannelKind.EMAIL:
        recipients = [line.strip() for line in channel.emails.splitlines() if line.strip()]
        subject = payload.get("text", "EvalHub alert").split(":", 1)[0][:200]
        try:
            send_mail(subject, payload.get("text", ""), None, recipients)
        except Exception as exc:  # any mail backend failure is this delivery's failure
            raise DeliveryFailed(f"e-mail not sent: {exc}") from exc
        return None
    from evalhub.core.outbound import OutboundDenied, outbound_http_client

    if channel.kind == ChannelKind.SLACK:
        body = json.dumps({"text": payload.get("text", "")}).encode()
        headers = {"Content-Type": "application/json"}
    else:
        body = json.dumps(payload, sort_keys=True).encode()
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "EvalHub-Webhook/1",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: signature(channel.secret, timestamp, body),
        }
    import httpx2

    try:
        with outbound_http_client(timeout=settings.EVALHUB_WEBHOOK_TIMEOUT_SECONDS) as client:
            response = client.post(channel.url, content=body, headers=headers)
    except OutboundDenied as exc:
        raise DeliveryFailed(str(exc)) from exc
    except httpx2.HTTPError as exc:
        raise DeliveryFailed(f"{type(exc).__name__}: {exc}") from exc
    if not 200 <= response.status_code < 300:
        raise DeliveryFailed(f"answered {response.status_code}", status=response.status_code)
    return response.status_code


__all__ = [
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "DeliveryFailed",
    "alert_payload",
    "channel_send",
    "segment_clause",
    "signature",
    "traces_url",
]
