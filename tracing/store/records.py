"""A span as received, independent of the wire format, and the OpenInference fields read from it.

Every ingest path (OTLP protobuf/JSON, the Phoenix-shaped span API, the demo seeder) builds
``SpanRecord`` objects and hands them to ``tracing.store.services.spans_ingest``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import orjson
from django.conf import settings
from django.utils import timezone

from evalhub.core.json_input import MAX_JSON_DEPTH, json_value_problem
from tracing.models import SPAN_KIND_MAX_LENGTH, SpanKind, StatusCode

_STATUS_CODES = {code.value for code in StatusCode}
_NUL = "\x00"

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


@dataclass(frozen=True, slots=True)
class RejectedSpan:
    """A span left out of a batch, and why (OTLP's partial success reports these)."""

    trace_id: str
    span_id: str
    reason: str
    name: str = ""

    def __str__(self) -> str:
        name = f" ({self.name[:80]!r})" if self.name else ""
        return f"span {self.span_id or '?'}{name}: {self.reason}"


class TimeWindow(NamedTuple):
    """The span start and end times accepted: ``earliest`` <= time <= ``latest``."""

    earliest: datetime
    latest: datetime


def span_time_window(now: datetime | None = None) -> TimeWindow:
    """From ``EVALHUB_SPAN_EARLIEST`` to ``EVALHUB_SPAN_MAX_FUTURE_SECONDS`` past ``now``: a
    clock at 0 (1970) or a garbage timestamp (year 9999) would otherwise put spans where no
    time filter finds them and stretch every chart."""
    earliest = datetime.combine(settings.EVALHUB_SPAN_EARLIEST, datetime.min.time(), tzinfo=UTC)
    latest = (now or timezone.now()) + timedelta(seconds=settings.EVALHUB_SPAN_MAX_FUTURE_SECONDS)
    return TimeWindow(earliest, latest)


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

    def validate(self, *, window: TimeWindow | None = None) -> None:
        """Raise ``SpanRecordError`` for ids, times or a status that cannot be stored; times
        must fall in ``window`` (``span_time_window()`` when not given)."""
        if not self.trace_id:
            raise SpanRecordError("trace_id is empty")
        if not self.span_id:
            raise SpanRecordError("span_id is empty")
        if len(self.trace_id) > 64 or len(self.span_id) > 32:
            raise SpanRecordError("trace_id or span_id is too long")
        if self.parent_id == "":
            self.parent_id = None
        if self.parent_id is not None and len(self.parent_id) > 32:
            raise SpanRecordError("parent_id is too long")
        for name, value in (
            ("trace_id", self.trace_id),
            ("span_id", self.span_id),
            ("parent_id", self.parent_id or ""),
        ):
            if _NUL in value:
                raise SpanRecordError(f"{name} contains a NUL character")
        if self.start_time.tzinfo is None or self.end_time.tzinfo is None:
            raise SpanRecordError("start_time and end_time must carry a time zone")
        if self.end_time < self.start_time:
            raise SpanRecordError("end_time is before start_time")
        earliest, latest = window or span_time_window()
        if self.start_time < earliest:
            raise SpanRecordError(
                f"start_time {self.start_time.isoformat()} is before {earliest.date()} "
                "(EVALHUB_SPAN_EARLIEST)"
            )
        if self.end_time > latest:
            which = "start_time" if self.start_time > latest else "end_time"
            value = getattr(self, which)
            raise SpanRecordError(
                f"{which} {value.isoformat()} is more than "
                f"{settings.EVALHUB_SPAN_MAX_FUTURE_SECONDS} s in the future "
                "(EVALHUB_SPAN_MAX_FUTURE_SECONDS)"
            )
        if self.status_code not in _STATUS_CODES:
            raise SpanRecordError(
                f"status_code {self.status_code!r} is not one of UNSET, OK, ERROR"
            )


def span_kind_of(record: SpanRecord) -> str:
    """The span's kind as sent (upper-cased), known to ``SpanKind`` or not; UNKNOWN when none."""
    kind = record.span_kind or record.attributes.get("openinference.span.kind")
    kind = str(kind).strip().upper() if kind is not None else ""
    if len(kind) > SPAN_KIND_MAX_LENGTH:
        raise SpanRecordError(
            f"the span kind is longer than {SPAN_KIND_MAX_LENGTH} characters: {kind[:40]!r}..."
        )
    return kind or SpanKind.UNKNOWN


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
            # NaN and Infinity become strings, as non-finite OTLP doubles do.
            parsed = json.loads(raw, parse_constant=str)
        except RecursionError:
            raise SpanRecordError(
                f"metadata: the JSON is nested deeper than {MAX_JSON_DEPTH} levels"
            ) from None
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


# Text columns a span row fills, checked for NUL characters (PostgreSQL refuses them).
_TEXT_COLUMNS = (
    "span_kind",
    "input_value",
    "input_mime_type",
    "output_value",
    "output_mime_type",
    "model_name",
    "session_key",
    "user_id",
)
_JSON_COLUMNS = ("attributes", "metadata", "tags")


def row_problem(record: SpanRecord, columns: Mapping[str, Any]) -> str | None:
    """Why the row of ``record`` (``columns`` from ``columns_of``) cannot be stored, or None:
    a NUL character in any text or JSON, a non-finite number or JSON nested deeper than
    ``MAX_JSON_DEPTH`` (an attribute key counts one level a dot)."""
    for name, value in (("name", record.name), ("status_message", record.status_message)):
        if _NUL in value:
            return f"{name} contains a NUL character"
    for name in _TEXT_COLUMNS:
        value = columns[name]
        if value is not None and _NUL in value:
            return f"{_COLUMN_LABELS.get(name, name)} contains a NUL character"
    # The fast path: orjson writes the JSON columns in C (raising past 254 levels or on an
    # integer beyond 64 bits, escaping NUL as \\u0000); only a span that fails it is walked in
    # Python to say where.
    failure = ""
    try:
        blobs = [orjson.dumps(columns[name]) for name in _JSON_COLUMNS]
        blobs.append(orjson.dumps(record.events))
    except orjson.JSONEncodeError as exc:
        failure = str(exc)
    else:
        if not any(b"\\u0000" in blob for blob in blobs):
            return None
    for key, value in record.attributes.items():
        levels = key.count(".") + 1
        if levels > MAX_JSON_DEPTH:
            return (
                f"attribute {key[:60]!r}...: its key has {levels} dot-separated parts, "
                f"more than {MAX_JSON_DEPTH}"
            )
        if _NUL in key:
            return f"attribute {key!r}: the key contains a NUL character"
        problem = json_value_problem(
            value, field=f"attribute {key!r}", max_depth=MAX_JSON_DEPTH - levels
        )
        if problem is not None:
            return problem
    for name in _JSON_COLUMNS:
        problem = json_value_problem(columns[name], field=name)
        if problem is not None:
            return problem
    problem = json_value_problem(record.events, field="events")
    if problem is None and failure:
        return f"the attributes cannot be written as JSON: {failure}"
    return problem


_COLUMN_LABELS = {
    "span_kind": "openinference.span.kind",
    "input_value": "input.value",
    "input_mime_type": "input.mime_type",
    "output_value": "output.value",
    "output_mime_type": "output.mime_type",
    "model_name": "llm.model_name",
    "session_key": "session.id",
    "user_id": "user.id",
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
