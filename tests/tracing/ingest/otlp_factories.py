"""Builders of OTLP requests for the tests: protobuf spans and requests, OTLP JSON bodies."""

from __future__ import annotations

import base64
from typing import Any

from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

TRACE_ID = bytes.fromhex("0af7651916cd43dd8448eb211c80319c")
ROOT_ID = bytes.fromhex("b7ad6b7169203331")
CHILD_ID = bytes.fromhex("00f067aa0ba902b7")
START_NS = 1_795_176_000_123_456_789  # 2026-11-20T12:00:00.123456789Z
END_NS = START_NS + 1_500_000_000


# --- Builders ---------------------------------------------------------------------------------


def any_value(value: Any) -> AnyValue:
    """A Python value as an OTLP AnyValue (bytes → bytes_value, None → empty)."""
    result = AnyValue()
    if value is None:
        pass
    elif isinstance(value, bool):
        result.bool_value = value
    elif isinstance(value, int):
        result.int_value = value
    elif isinstance(value, float):
        result.double_value = value
    elif isinstance(value, bytes):
        result.bytes_value = value
    elif isinstance(value, list):
        result.array_value.values.extend(any_value(v) for v in value)
    elif isinstance(value, dict):
        result.kvlist_value.values.extend(key_values(value))
    else:
        result.string_value = value
    return result


def key_values(attributes: dict[str, Any]) -> list[KeyValue]:
    return [KeyValue(key=k, value=any_value(v)) for k, v in attributes.items()]


def pb_span(
    *,
    trace_id: bytes = TRACE_ID,
    span_id: bytes = ROOT_ID,
    parent_id: bytes = b"",
    name: str = "agent",
    start_ns: int = START_NS,
    end_ns: int = END_NS,
    status_code: int = 0,
    status_message: str = "",
    attributes: dict[str, Any] | None = None,
    events: list[tuple[str, int, dict[str, Any]]] = (),  # type: ignore[assignment]
) -> Span:
    span = Span(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent_id,
        name=name,
        kind=Span.SPAN_KIND_INTERNAL,
        start_time_unix_nano=start_ns,
        end_time_unix_nano=end_ns,
        attributes=key_values(attributes or {}),
        status=Status(code=status_code, message=status_message),
    )
    for event_name, time_ns, event_attributes in events:
        span.events.add(
            name=event_name, time_unix_nano=time_ns, attributes=key_values(event_attributes)
        )
    return span


def pb_request(*spans: Span, resource: dict[str, Any] | None = None) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.extend(key_values(resource or {}))
    scope_spans = resource_spans.scope_spans.add()
    scope_spans.scope.name = "openinference.instrumentation.test"
    scope_spans.spans.extend(spans)
    return request


def otlp_json(request: ExportTraceServiceRequest, *, snake_case: bool = False) -> dict[str, Any]:
    """The OTLP JSON form of a request: protobuf's JSON mapping with ids in hex, as OTLP has it."""
    document = MessageToDict(request, preserving_proto_field_name=snake_case)
    for resource_spans in document.get("resource_spans" if snake_case else "resourceSpans", []):
        for scope_spans in resource_spans.get("scope_spans" if snake_case else "scopeSpans", []):
            for span in scope_spans.get("spans", []):
                for name in (
                    ("trace_id", "span_id", "parent_span_id")
                    if snake_case
                    else ("traceId", "spanId", "parentSpanId")
                ):
                    if name in span:
                        span[name] = base64.b64decode(span[name]).hex()
    return document
