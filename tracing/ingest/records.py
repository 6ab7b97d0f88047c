"""A span as received, independent of the wire format, and the OpenInference fields read from it.

Every ingest path (OTLP protobuf/JSON, the Phoenix-shaped span API, the demo seeder) builds
``SpanRecord`` objects and hands them to ``tracing.services.spans_ingest``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tracing.models import SpanKind, StatusCode

_SPAN_KINDS = {kind.value for kind in SpanKind}
_STATUS_CODES = {code.value for code in StatusCode}

# Attributes kept in their own columns rather than inside the attributes JSON.
COLUMN_ATTRIBUTES = (
    "input.value",
    "input.mime_type",
    "output.value",
    "output.mime_type",
    "metadata",
)


class SpanRecordError(ValueError):
    """A span that cannot be stored, with the reason."""


@dataclass(slots=True)
class SpanRecord:
    trace_id: str
    span_id: str
    name: str
    start_time: datetime
    end_time: datetime
    parent_id: str | None = None
    status_code: str = StatusCode.UNSET
    status_message: str = ""
    attributes: dict[str, Any] = field(default_factory=dict)  # flat, dotted OpenInference keys
    events: list[dict[str, Any]] = field(default_factory=list)
    project_name: str | None = None
    span_kind: str | None = None  # overrides openinference.span.kind when given

    def validate(self) -> None:
        if not self.trace_id:
            raise SpanRecordError("trace_id is empty")
        if not self.span_id:
            raise SpanRecordError("span_id is empty")
        if len(self.trace_id) > 64 or len(self.span_id) > 32:
            raise SpanRecordError("trace_id or span_id is too long")
        if self.parent_id == "":
            self.parent_id = None
        if self.start_time.tzinfo is None or self.end_time.tzinfo is None:
            raise SpanRecordError("start_time and end_time must carry a time zone")
        if self.end_time < self.start_time:
            raise SpanRecordError("end_time is before start_time")
        if self.status_code not in _STATUS_CODES:
            raise SpanRecordError(
                f"status_code {self.status_code!r} is not one of UNSET, OK, ERROR"
            )


def span_kind_of(record: SpanRecord) -> str:
    kind = record.span_kind or record.attributes.get("openinference.span.kind") or "UNKNOWN"
    kind = str(kind).upper()
    return kind if kind in _SPAN_KINDS else SpanKind.UNKNOWN


def _int_or_none(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _text_or_none(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str)


def metadata_of(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """OpenInference keeps metadata as a JSON string; dict values are accepted as they are."""
    raw = attributes.get("metadata")
    if raw is None:
        nested = {
            k[len("metadata.") :]: v for k, v in attributes.items() if k.startswith("metadata.")
        }
        return unflatten(nested) if nested else {}
    if isinstance(raw, Mapping):
        return dict(raw)
    if isinstance(raw, str):
        try:
            parsed = json.loads(raw)
        except ValueError:
            return {"value": raw}
        return parsed if isinstance(parsed, dict) else {"value": parsed}
    return {"value": raw}


def tags_of(attributes: Mapping[str, Any]) -> list[str]:
    raw = attributes.get("tag.tags")
    if isinstance(raw, str):
        return [raw]
    if isinstance(raw, list | tuple):
        return [str(tag) for tag in raw]
    return []


def columns_of(record: SpanRecord) -> dict[str, Any]:
    """The column values a span row takes from its attributes."""
    attrs = record.attributes
    prompt = _int_or_none(attrs.get("llm.token_count.prompt"))
    completion = _int_or_none(attrs.get("llm.token_count.completion"))
    total = _int_or_none(attrs.get("llm.token_count.total"))
    if total is None and (prompt is not None or completion is not None):
        total = (prompt or 0) + (completion or 0)
    model = attrs.get("llm.model_name") or attrs.get("embedding.model_name") or ""
    return {
        "span_kind": span_kind_of(record),
        "input_value": _text_or_none(attrs.get("input.value")),
        "input_mime_type": str(attrs.get("input.mime_type") or "")[:64],
        "output_value": _text_or_none(attrs.get("output.value")),
        "output_mime_type": str(attrs.get("output.mime_type") or "")[:64],
        "model_name": str(model)[:255],
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": total,
        "session_key": str(attrs.get("session.id") or "")[:255],
        "user_id": str(attrs.get("user.id") or "")[:255],
        "metadata": metadata_of(attrs),
        "tags": tags_of(attrs),
        "attributes": unflatten({k: v for k, v in attrs.items() if k not in COLUMN_ATTRIBUTES}),
    }


def unflatten(flat: Mapping[str, Any]) -> dict[str, Any]:
    """``{"llm.input_messages.0.message.role": "user"}`` → nested dicts and lists.

    Numeric segments become list positions (when they run 0..n-1). Where a key is both a value
    and a prefix of other keys (``a`` and ``a.b``), the value is kept under the empty key of the
    nested object.
    """
    root: dict[str, Any] = {}
    # Objects that got a numeric key: (depth, their parent, their key in it, the object).
    numeric: dict[int, tuple[int, dict[str, Any], str, dict[str, Any]]] = {}
    for key, value in flat.items():
        parts = key.split(".")
        parent: dict[str, Any] | None = None
        parent_key = ""
        node = root
        for depth, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif not isinstance(child, dict):
                child = node[part] = {"": child}
            if parent is not None and part.isdigit() and id(node) not in numeric:
                numeric[id(node)] = (depth, parent, parent_key, node)
            parent, parent_key, node = node, part, child
        leaf = parts[-1]
        existing = node.get(leaf)
        if isinstance(existing, dict):
            existing[""] = value
        else:
            node[leaf] = value
        if parent is not None and leaf.isdigit() and id(node) not in numeric:
            numeric[id(node)] = (len(parts) - 1, parent, parent_key, node)
    # Deepest first, so a list's items are already converted when the list is built.
    for _depth, parent, name, obj in sorted(numeric.values(), key=lambda item: -item[0]):
        if all(k.isdigit() for k in obj):
            indexes = sorted(int(k) for k in obj)
            if indexes == list(range(len(indexes))):
                parent[name] = [obj[str(i)] for i in indexes]
    return root


def flatten(nested: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """The inverse of ``unflatten``: nested attributes → dotted OpenInference keys."""
    flat: dict[str, Any] = {}
    for key, value in nested.items():
        path = f"{prefix}.{key}" if prefix and key != "" else (prefix or key)
        if isinstance(value, dict) and value:
            flat.update(flatten(value, path))
        elif isinstance(value, list) and value and any(isinstance(v, dict) for v in value):
            for index, item in enumerate(value):
                if isinstance(item, dict):
                    flat.update(flatten(item, f"{path}.{index}"))
                else:
                    flat[f"{path}.{index}"] = item
        else:
            flat[path] = value
    return flat
