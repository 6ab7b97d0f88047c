"""A stored span as a Phoenix REST row: the shape the API, the exports and the dataframes write."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from tracing.store.records import flatten


def phoenix_attributes(row: Mapping[str, Any]) -> dict[str, Any]:
    """A span's attributes as the flat dotted keys it was sent with: the stored attributes plus
    input, output and metadata, which are kept in their own columns."""
    flat = flatten(row.get("attributes") or {})
    for key, column in (
        ("input.value", "input_value"),
        ("input.mime_type", "input_mime_type"),
        ("output.value", "output_value"),
        ("output.mime_type", "output_mime_type"),
    ):
        value = row.get(column)
        if value not in (None, ""):
            flat[key] = value
    metadata = row.get("metadata")
    if metadata:
        flat.update(flatten({"metadata": metadata}))
    return flat


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def span_to_phoenix(row: Mapping[str, Any]) -> dict[str, Any]:
    """A span row (``.values(*EXPORT_FIELDS)`` or ``span_row`` of a model) → Phoenix's shape."""
    return {
        "id": str(row["id"]),
        "name": row["name"],
        "context": {"trace_id": row["trace__trace_id"], "span_id": row["span_id"]},
        "span_kind": row["span_kind"],
        "parent_id": row["parent_id"],
        "start_time": _iso(row["start_time"]),
        "end_time": _iso(row["end_time"]),
        "status_code": row["status_code"],
        "status_message": row["status_message"] or "",
        "attributes": phoenix_attributes(row),
        "events": row["events"] or [],
    }


def span_row(span: Any) -> dict[str, Any]:
    """The row dict of a ``Span`` instance whose trace is loaded (``select_related("trace")``)."""
    return {
        "id": span.pk,
        "span_id": span.span_id,
        "trace__trace_id": span.trace.trace_id,
        "parent_id": span.parent_id,
        "name": span.name,
        "span_kind": span.span_kind,
        "status_code": span.status_code,
        "status_message": span.status_message,
        "start_time": span.start_time,
        "end_time": span.end_time,
        "latency_ms": span.latency_ms,
        "attributes": span.attributes,
        "events": span.events,
        "input_value": span.input_value,
        "input_mime_type": span.input_mime_type,
        "output_value": span.output_value,
        "output_mime_type": span.output_mime_type,
        "model_name": span.model_name,
        "prompt_tokens": span.prompt_tokens,
        "completion_tokens": span.completion_tokens,
        "total_tokens": span.total_tokens,
        "cost": span.cost,
        "session_key": span.session_key,
        "user_id": span.user_id,
        "metadata": span.metadata,
    }
