"""OTLP/HTTP trace payloads (``ExportTraceServiceRequest``) → ``SpanRecord`` objects.

Two wire forms are read: protobuf, by iterating the generated messages directly (no
``MessageToDict``), and OTLP JSON (lowerCamelCase names, hex ids, 64-bit integers as numbers
or strings, enums as integers or names; snake_case names and base64 ids are accepted too).

Spans are judged one by one (OTLP's partial success): a span with a bad id, time or status is
left out with its reason (``OtlpSpans.rejected``) and the others are kept; only a payload that
cannot be read at all (``OtlpDecodeError``) refuses the whole request.

What is kept of a span: its ids, name, times, status, attributes (flat dotted keys exactly as
sent, values as Python values) and events. What is not kept:

- Resource attributes (``service.name``, ``telemetry.sdk.*``, ``host.*``, ...). They describe
  the process that sent the batch, are the same for every span in it, and nothing in the store
  reads them; copying them into every span would only grow each row. The one that matters,
  ``openinference.project.name``, chooses the span's project (the ``x-project-name`` header
  wins over it). Phoenix treats resources the same way.
- The instrumentation scope, the OTel span kind (CLIENT, SERVER, ...), links, trace state,
  flags and dropped counts: OpenInference carries what the store uses in span attributes.

AnyValue → Python: string, bool and int as they are, double as float (non-finite doubles as
the strings ``"NaN"``, ``"Infinity"``, ``"-Infinity"``, which JSON columns can store), array →
list, kvlist → dict, bytes → base64 string, empty → None.

One module above 500 lines on purpose: the protobuf and JSON readers feed the same per-span
checks (ids, times, status, attributes), which read best next to both. The body's
``Content-Encoding`` is undone before (``tracing.ingest.encoding``).
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from google.protobuf.json_format import MessageToJson
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan

from tracing.models import Project, StatusCode
from tracing.store.records import (
    RejectedSpan,
    SpanRecord,
    SpanRecordError,
    TimeWindow,
    span_time_window,
)

PROTOBUF_CONTENT_TYPES = frozenset({"application/x-protobuf", "application/protobuf"})
JSON_CONTENT_TYPE = "application/json"
PROJECT_ATTRIBUTE = "openinference.project.name"
PROJECT_NAME_MAX_LENGTH: int = Project._meta.get_field("name").max_length or 200

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_STATUS_BY_NUMBER = (StatusCode.UNSET.value, StatusCode.OK.value, StatusCode.ERROR.value)
_STATUS_BY_NAME = {
    "STATUS_CODE_UNSET": StatusCode.UNSET.value,
    "STATUS_CODE_OK": StatusCode.OK.value,
    "STATUS_CODE_ERROR": StatusCode.ERROR.value,
    "UNSET": StatusCode.UNSET.value,
    "OK": StatusCode.OK.value,
    "ERROR": StatusCode.ERROR.value,
}
_TRACE_ID_BYTES = 16
_SPAN_ID_BYTES = 8


@dataclass
class OtlpSpans:
    """The spans of a request: those that can be stored, and those left out with a reason."""

    records: list[SpanRecord] = field(default_factory=list)
    rejected: list[RejectedSpan] = field(default_factory=list)


class OtlpDecodeError(ValueError):
    """A payload that is not a readable ``ExportTraceServiceRequest``, with the reason."""


# --- Shared conversions -----------------------------------------------------------------------


def _time(nanos: int) -> datetime:
    return _EPOCH + timedelta(microseconds=nanos // 1000)


def _finite(number: float) -> float | str:
    if math.isfinite(number):
        return number
    if math.isnan(number):
        return "NaN"
    return "Infinity" if number > 0 else "-Infinity"


def _project(resource_attributes: Mapping[str, Any], override: str | None) -> str | None:
    name = override
    if name is None:
        raw = resource_attributes.get(PROJECT_ATTRIBUTE)
        name = (raw if isinstance(raw, str) else str(raw)).strip() if raw is not None else None
    if not name:
        return None
    if len(name) > PROJECT_NAME_MAX_LENGTH:
        raise SpanRecordError(
            f"project name is longer than {PROJECT_NAME_MAX_LENGTH} characters: {name[:40]!r}..."
        )
    return name


def _span_record(
    *,
    trace_id: str,
    span_id: str,
    parent_id: str | None,
    name: str,
    start_nanos: int,
    end_nanos: int,
    status_code: str,
    status_message: str,
    attributes: dict[str, Any],
    events: list[dict[str, Any]],
    project_name: str | None,
    window: TimeWindow,
) -> SpanRecord:
    if start_nanos <= 0:
        raise SpanRecordError("start_time_unix_nano is missing")
    try:
        start, end = _time(start_nanos), _time(end_nanos)
    except OverflowError:
        raise SpanRecordError("a timestamp is out of range") from None
    record = SpanRecord(
        trace_id=trace_id,
        span_id=span_id,
        parent_id=parent_id,
        name=name,
        start_time=start,
        end_time=end,
        status_code=status_code,
        status_message=status_message,
        attributes=attributes,
        events=events,
        project_name=project_name,
    )
    record.validate(window=window)
    return record


def _event(name: str, nanos: int, attributes: dict[str, Any]) -> dict[str, Any]:
    try:
        timestamp = _time(nanos).isoformat()
    except OverflowError:
        raise SpanRecordError(f"event {name!r}: time_unix_nano is out of range") from None
    return {"name": name, "timestamp": timestamp, "attributes": attributes}


# --- Protobuf ---------------------------------------------------------------------------------


def spans_from_otlp_protobuf(body: bytes, *, project_name: str | None = None) -> OtlpSpans:
    """Spans of a protobuf ``ExportTraceServiceRequest``.

    ``project_name`` (the ``x-project-name`` header) wins over the resource attribute
    ``openinference.project.name``; with neither a record's project is None. Raises
    ``OtlpDecodeError`` for a malformed payload; an invalid span is left out with its reason.
    """
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except DecodeError as exc:
        raise OtlpDecodeError(f"malformed protobuf ExportTraceServiceRequest: {exc}") from None
    override = (project_name or "").strip() or None
    window = span_time_window()
    result = OtlpSpans()
    for resource_spans in request.resource_spans:
        spans = [span for scope in resource_spans.scope_spans for span in scope.spans]
        try:
            project = _project(_pb_attributes(resource_spans.resource.attributes), override)
        except SpanRecordError as exc:
            result.rejected.extend(
                RejectedSpan(s.trace_id.hex(), s.span_id.hex(), str(exc), s.name) for s in spans
            )
            continue
        for span in spans:
            try:
                result.records.append(_pb_span(span, project, window))
            except SpanRecordError as exc:
                result.rejected.append(
                    RejectedSpan(span.trace_id.hex(), span.span_id.hex(), str(exc), span.name)
                )
    return result


def _pb_value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind == "int_value":
        return value.int_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "double_value":
        return _finite(value.double_value)
    if kind == "array_value":
        return [_pb_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _pb_value(kv.value) for kv in value.kvlist_value.values}
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode("ascii")
    return None


def _pb_attributes(attributes: Iterable[KeyValue]) -> dict[str, Any]:
    return {kv.key: _pb_value(kv.value) for kv in attributes}


def _pb_span(span: PbSpan, project: str | None, window: TimeWindow) -> SpanRecord:
    trace_id, parent_id = span.trace_id, span.parent_span_id
    if len(trace_id) != _TRACE_ID_BYTES or not any(trace_id):
        raise SpanRecordError(
            f"trace_id must be {_TRACE_ID_BYTES} bytes, not all zero (got {len(trace_id)})"
        )
    if len(span.span_id) != _SPAN_ID_BYTES or not any(span.span_id):
        raise SpanRecordError(
            f"span_id must be {_SPAN_ID_BYTES} bytes, not all zero (got {len(span.span_id)})"
        )
    if parent_id and len(parent_id) != _SPAN_ID_BYTES:
        raise SpanRecordError(
            f"parent_span_id must be empty or {_SPAN_ID_BYTES} bytes (got {len(parent_id)})"
        )
    status = span.status
    if not 0 <= status.code < len(_STATUS_BY_NUMBER):
        raise SpanRecordError(f"status code {status.code} is not 0, 1 or 2")
    return _span_record(
        trace_id=trace_id.hex(),
        span_id=span.span_id.hex(),
        parent_id=parent_id.hex() if parent_id else None,
        name=span.name,
        start_nanos=span.start_time_unix_nano,
        end_nanos=span.end_time_unix_nano,
        status_code=_STATUS_BY_NUMBER[status.code],
        status_message=status.message,
        attributes=_pb_attributes(span.attributes),
        events=[
            _event(event.name, event.time_unix_nano, _pb_attributes(event.attributes))
            for event in span.events
        ],
        project_name=project,
        window=window,
    )


# --- JSON -------------------------------------------------------------------------------------


def spans_from_otlp_json(body: bytes, *, project_name: str | None = None) -> OtlpSpans:
    """Spans of an OTLP JSON ``ExportTraceServiceRequest``; see ``spans_from_otlp_protobuf``."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise OtlpDecodeError(f"malformed JSON: {exc}") from None
    if not isinstance(document, dict):
        raise OtlpDecodeError("the JSON body must be an object (an ExportTraceServiceRequest)")
    override = (project_name or "").strip() or None
    window = span_time_window()
    result = OtlpSpans()
    for r, resource_spans in enumerate(_array(document, "resourceSpans", "resource_spans", "")):
        where = f"resourceSpans[{r}]"
        resource = _object(_field(resource_spans, "resource", "resource"), f"{where}.resource")
        resource_attributes = _json_attributes(resource, f"{where}.resource")
        scopes = _array(resource_spans, "scopeSpans", "scope_spans", where)
        if not scopes:  # OTLP before 0.19
            scopes = _array(
                resource_spans,
                "instrumentationLibrarySpans",
                "instrumentation_library_spans",
                where,
            )
        spans = [
            (f"{where}.scopeSpans[{s}].spans[{i}]", span)
            for s, scope_spans in enumerate(scopes)
            for i, span in enumerate(
                _array(scope_spans, "spans", "spans", f"{where}.scopeSpans[{s}]")
            )
        ]
        try:
            project: str | None = _project(resource_attributes, override)
            problem = ""
        except SpanRecordError as exc:
            project, problem = None, str(exc)
        for span_where, span in spans:
            try:
                if problem:
                    raise SpanRecordError(problem)
                result.records.append(_json_span(span, project, span_where, window))
            except SpanRecordError as exc:
                result.rejected.append(_json_rejected(span, f"{span_where}: {exc}"))
    return result


def _json_rejected(span: Mapping[str, Any], reason: str) -> RejectedSpan:
    def text(value: Any) -> str:
        return value[:64] if isinstance(value, str) else ""

    return RejectedSpan(
        text(_field(span, "traceId", "trace_id")),
        text(_field(span, "spanId", "span_id")),
        reason,
        text(span.get("name")),
    )


def _field(obj: Mapping[str, Any], camel: str, snake: str) -> Any:
    value = obj.get(camel)
    return obj.get(snake) if value is None else value


def _object(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise OtlpDecodeError(f"{where} must be an object")
    return value


def _array(obj: Mapping[str, Any], camel: str, snake: str, where: str) -> list[dict[str, Any]]:
    value = _field(obj, camel, snake)
    if value is None:
        return []
    path = f"{where}.{camel}" if where else camel
    if not isinstance(value, list):
        raise OtlpDecodeError(f"{path} must be an array")
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            raise OtlpDecodeError(f"{path}[{index}] must be an object")
    return value


def _json_int(value: Any, what: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            pass
    raise OtlpDecodeError(f"{what} must be an integer (a number or a string), got {value!r:.60}")


def _json_float(value: Any, what: str) -> float | str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _finite(float(value))
    if isinstance(value, str):
        try:
            return _finite(float(value))
        except ValueError:
            pass
    raise OtlpDecodeError(f"{what} must be a number, got {value!r:.60}")


def _json_value(value: Any, where: str) -> Any:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise OtlpDecodeError(f"{where} must be an AnyValue object")
    for key, raw in value.items():
        kind = _JSON_KINDS.get(key)
        if kind is None:
            continue
        if kind == "string":
            if not isinstance(raw, str):
                raise OtlpDecodeError(f"{where}.stringValue must be a string")
            return raw
        if kind == "int":
            return _json_int(raw, f"{where}.intValue")
        if kind == "bool":
            if not isinstance(raw, bool):
                raise OtlpDecodeError(f"{where}.boolValue must be true or false")
            return raw
        if kind == "double":
            return _json_float(raw, f"{where}.doubleValue")
        if kind == "array":
            items = _object(raw, f"{where}.arrayValue").get("values")
            if items is None:
                return []
            if not isinstance(items, list):
                raise OtlpDecodeError(f"{where}.arrayValue.values must be an array")
            return [
                _json_value(item, f"{where}.arrayValue.values[{n}]") for n, item in enumerate(items)
            ]
        if kind == "kvlist":
            return _json_attributes(_object(raw, f"{where}.kvlistValue"), where, "values")
        if kind == "bytes":
            if not isinstance(raw, str):
                raise OtlpDecodeError(f"{where}.bytesValue must be a base64 string")
            return raw
    return None


_JSON_KINDS = {
    "stringValue": "string",
    "string_value": "string",
    "intValue": "int",
    "int_value": "int",
    "boolValue": "bool",
    "bool_value": "bool",
    "doubleValue": "double",
    "double_value": "double",
    "arrayValue": "array",
    "array_value": "array",
    "kvlistValue": "kvlist",
    "kvlist_value": "kvlist",
    "bytesValue": "bytes",
    "bytes_value": "bytes",
}


def _json_attributes(
    obj: Mapping[str, Any], where: str, name: str = "attributes"
) -> dict[str, Any]:
    attributes: dict[str, Any] = {}
    for n, kv in enumerate(_array(obj, name, name, where)):
        key = kv.get("key")
        if not isinstance(key, str):
            raise OtlpDecodeError(f"{where}.{name}[{n}].key must be a string")
        attributes[key] = _json_value(kv.get("value"), f"{where}.{name}[{n}].value")
    return attributes


def _json_id(value: Any, size: int, what: str) -> str:
    """A hex id (as OTLP JSON has it), or base64 (as protobuf's JSON mapping has it)."""
    if not isinstance(value, str):
        raise SpanRecordError(f"{what} must be a string")
    raw = None
    try:
        if len(value) == 2 * size:
            raw = bytes.fromhex(value)
        elif len(value) == 4 * math.ceil(size / 3):
            raw = base64.b64decode(value, validate=True)
    except (ValueError, binascii.Error):
        raw = None
    if raw is None or len(raw) != size or not any(raw):
        raise SpanRecordError(
            f"{what} must be {2 * size} hex characters, not all zero (got {value[:80]!r})"
        )
    return raw.hex()


def _json_status(status: dict[str, Any], where: str) -> tuple[str, str]:
    code = status.get("code", 0)
    message = status.get("message") or ""
    if not isinstance(message, str):
        raise OtlpDecodeError(f"{where}.status.message must be a string")
    if isinstance(code, str) and code.upper() in _STATUS_BY_NAME:
        return _STATUS_BY_NAME[code.upper()], message
    number = _json_int(code, f"{where}.status.code")
    if not 0 <= number < len(_STATUS_BY_NUMBER):
        raise SpanRecordError(f"status code {number} is not 0, 1 or 2")
    return _STATUS_BY_NUMBER[number], message


def _json_span(
    span: dict[str, Any], project: str | None, where: str, window: TimeWindow
) -> SpanRecord:
    name = span.get("name") or ""
    if not isinstance(name, str):
        raise OtlpDecodeError(f"{where}.name must be a string")
    span_id = _json_id(_field(span, "spanId", "span_id"), _SPAN_ID_BYTES, "spanId")
    trace_id = _json_id(_field(span, "traceId", "trace_id"), _TRACE_ID_BYTES, "traceId")
    raw_parent = _field(span, "parentSpanId", "parent_span_id")
    parent_id = _json_id(raw_parent, _SPAN_ID_BYTES, "parentSpanId") if raw_parent else None
    status_code, status_message = _json_status(_object(span.get("status"), where), where)
    events = []
    for n, event in enumerate(_array(span, "events", "events", where)):
        event_name = event.get("name") or ""
        if not isinstance(event_name, str):
            raise OtlpDecodeError(f"{where}.events[{n}].name must be a string")
        nanos = _json_int(
            _field(event, "timeUnixNano", "time_unix_nano") or 0,
            f"{where}.events[{n}].timeUnixNano",
        )
        attributes = _json_attributes(event, f"{where}.events[{n}]")
        events.append(_event(event_name, nanos, attributes))
    return _span_record(
        trace_id=trace_id,
        span_id=span_id,
        parent_id=parent_id,
        name=name,
        start_nanos=_json_int(
            _field(span, "startTimeUnixNano", "start_time_unix_nano") or 0,
            f"{where}.startTimeUnixNano",
        ),
        end_nanos=_json_int(
            _field(span, "endTimeUnixNano", "end_time_unix_nano") or 0,
            f"{where}.endTimeUnixNano",
        ),
        status_code=status_code,
        status_message=status_message,
        attributes=_json_attributes(span, where),
        events=events,
        project_name=project,
        window=window,
    )


# --- Responses --------------------------------------------------------------------------------

# Problems named in a partial success's error message, and its longest length.
_PROBLEMS_SHOWN = 5
_MESSAGE_MAX = 2000


def export_response(rejected: Sequence[RejectedSpan] = ()) -> ExportTraceServiceResponse:
    """The answer to an export: empty when every span was stored, else a ``partial_success``
    with the number of spans left out and the first reasons."""
    response = ExportTraceServiceResponse()
    if rejected:
        problems = "; ".join(str(r) for r in rejected[:_PROBLEMS_SHOWN])
        more = len(rejected) - _PROBLEMS_SHOWN
        message = f"{len(rejected)} span(s) rejected: {problems}" + (
            f"; and {more} more" if more > 0 else ""
        )
        response.partial_success.CopyFrom(
            ExportTracePartialSuccess(
                rejected_spans=len(rejected), error_message=message[:_MESSAGE_MAX]
            )
        )
    return response


def export_response_protobuf(rejected: Sequence[RejectedSpan] = ()) -> bytes:
    """``export_response`` as protobuf bytes."""
    return export_response(rejected).SerializeToString()


def export_response_json(rejected: Sequence[RejectedSpan] = ()) -> bytes:
    """``export_response`` in OTLP JSON (``{}`` when nothing was rejected)."""
    if not rejected:
        return b"{}"
    return MessageToJson(export_response(rejected), indent=None).encode()
