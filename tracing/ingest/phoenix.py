"""Phoenix's REST span shape ↔ ``SpanRecord`` and span rows.

A Phoenix span is ``{"name", "context": {"trace_id", "span_id"}, "span_kind", "parent_id",
"start_time", "end_time", "status_code", "status_message", "attributes", "events"}`` with ISO
times and flat, dotted OpenInference attribute keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from tracing.store.records import SpanRecord, SpanRecordError, flatten


def _time(data: Mapping[str, Any], key: str) -> datetime:
    raw = data.get(key)
    if not isinstance(raw, str) or not raw:
        raise SpanRecordError(f"{key} is missing (an ISO 8601 time with a time zone)")
    try:
        value = datetime.fromisoformat(raw)
    except ValueError as exc:
        raise SpanRecordError(f"{key} {raw!r} is not an ISO 8601 time") from exc
    if value.tzinfo is None:
        raise SpanRecordError(f"{key} {raw!r} has no time zone")
    return value


def _events(raw: Any) -> list[dict[str, Any]]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise SpanRecordError("events must be a list")
    events = []
    for position, event in enumerate(raw):
        if not isinstance(event, Mapping) or not isinstance(event.get("name"), str):
            raise SpanRecordError(f"events.{position} must be an object with a name")
        attributes = event.get("attributes") or {}
        if not isinstance(attributes, Mapping):
            raise SpanRecordError(f"events.{position}.attributes must be an object")
        events.append(
            {
                "name": event["name"],
                "timestamp": _time(event, "timestamp").isoformat(),
                "attributes": flatten(attributes),
            }
        )
    return events


def record_from_phoenix(data: Any) -> SpanRecord:
    """A span in Phoenix's shape → a validated ``SpanRecord``; ``SpanRecordError`` says why not."""
    if not isinstance(data, Mapping):
        raise SpanRecordError("a span must be a JSON object")
    context = data.get("context")
    if not isinstance(context, Mapping):
        raise SpanRecordError("context is missing (an object with trace_id and span_id)")
    trace_id, span_id = context.get("trace_id"), context.get("span_id")
    if not isinstance(trace_id, str) or not isinstance(span_id, str):
        raise SpanRecordError("context.trace_id and context.span_id must be strings")
    if not isinstance(data.get("name"), str) or not data["name"]:
        raise SpanRecordError("name is missing")
    parent_id = data.get("parent_id")
    if parent_id is not None and not isinstance(parent_id, str):
        raise SpanRecordError("parent_id must be a string or null")
    attributes = data.get("attributes") or {}
    if not isinstance(attributes, Mapping):
        raise SpanRecordError("attributes must be an object")
    span_kind = data.get("span_kind")
    if span_kind is not None and not isinstance(span_kind, str):
        raise SpanRecordError("span_kind must be a string")
    status_code = data.get("status_code") or "UNSET"
    if not isinstance(status_code, str):
        raise SpanRecordError("status_code must be a string")
    status_message = data.get("status_message") or ""
    if not isinstance(status_message, str):
        raise SpanRecordError("status_message must be a string")
    record = SpanRecord(
        trace_id=trace_id.strip(),
        span_id=span_id.strip(),
        parent_id=parent_id or None,
        name=data["name"],
        start_time=_time(data, "start_time"),
        end_time=_time(data, "end_time"),
        status_code=status_code.upper(),
        status_message=status_message,
        attributes=flatten(attributes),
        events=_events(data.get("events")),
        span_kind=span_kind.upper() if span_kind else None,
    )
    record.validate()
    return record


__all__ = ["record_from_phoenix"]
