"""The OTLP decoder: protobuf and JSON ``ExportTraceServiceRequest`` → ``SpanRecord``."""

from __future__ import annotations

import base64
import gzip
import json
import tracemalloc
import zlib
from datetime import UTC, datetime
from typing import Any

import pytest
from google.protobuf.json_format import MessageToDict
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status as OtelStatus
from opentelemetry.trace import StatusCode as OtelStatusCode

from tests.tracing.ingest.otlp_factories import (
    CHILD_ID,
    END_NS,
    ROOT_ID,
    START_NS,
    TRACE_ID,
    otlp_json,
    pb_request,
    pb_span,
)
from tracing.ingest.encoding import BodyTooLargeError, UnsupportedEncodingError, body_decompress
from tracing.ingest.otlp import OtlpDecodeError, spans_from_otlp_json, spans_from_otlp_protobuf
from tracing.store.records import SpanRecord


def decode_protobuf(body: bytes, **kwargs: Any) -> list[SpanRecord]:
    """The records of a protobuf request in which every span is valid."""
    decoded = spans_from_otlp_protobuf(body, **kwargs)
    assert decoded.rejected == []
    return decoded.records


def decode_json(document: Any, **kwargs: Any) -> list[SpanRecord]:
    """The records of an OTLP JSON request in which every span is valid."""
    decoded = spans_from_otlp_json(json.dumps(document).encode(), **kwargs)
    assert decoded.rejected == []
    return decoded.records


# --- Protobuf ---------------------------------------------------------------------------------


def test_protobuf_span_fields():
    request = pb_request(
        pb_span(name="agent", status_code=Status.STATUS_CODE_OK),
        pb_span(
            span_id=CHILD_ID,
            parent_id=ROOT_ID,
            name="llm",
            status_code=Status.STATUS_CODE_ERROR,
            status_message="rate limited",
            attributes={"openinference.span.kind": "LLM"},
        ),
        resource={"service.name": "svc", "openinference.project.name": "support-bot"},
    )
    root, child = decode_protobuf(request.SerializeToString())

    assert root.trace_id == "0af7651916cd43dd8448eb211c80319c"
    assert root.span_id == "b7ad6b7169203331"
    assert root.parent_id is None
    assert root.name == "agent"
    assert root.start_time == datetime(2026, 11, 20, 12, 0, 0, 123456, tzinfo=UTC)
    assert root.end_time == datetime(2026, 11, 20, 12, 0, 1, 623456, tzinfo=UTC)
    assert (root.status_code, root.status_message) == ("OK", "")
    assert root.project_name == "support-bot"
    # Resource attributes are not copied into the span.
    assert root.attributes == {}

    assert child.span_id == "00f067aa0ba902b7"
    assert child.parent_id == "b7ad6b7169203331"
    assert (child.status_code, child.status_message) == ("ERROR", "rate limited")
    assert child.attributes == {"openinference.span.kind": "LLM"}
    assert child.span_kind is None  # the kind comes from the attribute


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (Status.STATUS_CODE_UNSET, "UNSET"),
        (Status.STATUS_CODE_OK, "OK"),
        (Status.STATUS_CODE_ERROR, "ERROR"),
    ],
)
def test_protobuf_status_codes(code: int, expected: str):
    [record] = decode_protobuf(pb_request(pb_span(status_code=code)).SerializeToString())
    assert record.status_code == expected


def test_protobuf_attribute_values_of_every_kind():
    attributes = {
        "input.value": "What is the refund policy?",
        "llm.token_count.prompt": 9_000_000_000,  # needs 64 bits
        "llm.token_count.completion": -3,
        "retrieval.documents.0.document.score": 0.91,
        "llm.invocation_parameters.stream": True,
        "tag.tags": ["support", "refunds"],
        "mixed": ["a", 1, 2.5, False, None, ["nested"]],
        "kv": {"a": 1, "b": {"c": "d"}, "e": [1, 2]},
        "blob": b"\x00\x01\xfe\xff",
        "empty": None,
        "not_a_number": float("nan"),
        "infinite": float("-inf"),
        "llm.input_messages.0.message.role": "user",
    }
    [record] = decode_protobuf(pb_request(pb_span(attributes=attributes)).SerializeToString())
    assert record.attributes == {
        "input.value": "What is the refund policy?",
        "llm.token_count.prompt": 9_000_000_000,
        "llm.token_count.completion": -3,
        "retrieval.documents.0.document.score": 0.91,
        "llm.invocation_parameters.stream": True,
        "tag.tags": ["support", "refunds"],
        "mixed": ["a", 1, 2.5, False, None, ["nested"]],
        "kv": {"a": 1, "b": {"c": "d"}, "e": [1, 2]},
        "blob": base64.b64encode(b"\x00\x01\xfe\xff").decode(),
        "empty": None,
        "not_a_number": "NaN",
        "infinite": "-Infinity",
        "llm.input_messages.0.message.role": "user",
    }
    assert type(record.attributes["llm.token_count.prompt"]) is int
    assert type(record.attributes["llm.invocation_parameters.stream"]) is bool
    # Keys stay flat and dotted, exactly as sent.
    assert list(record.attributes) == list(attributes)


def test_protobuf_events_keep_exception_attributes():
    span = pb_span(
        events=[
            (
                "exception",
                START_NS + 1_000,
                {
                    "exception.type": "ValueError",
                    "exception.message": "boom",
                    "exception.stacktrace": "Traceback (most recent call last): ...",
                    "exception.escaped": False,
                },
            ),
            ("first token", START_NS + 2_000_000, {}),
        ]
    )
    [record] = decode_protobuf(pb_request(span).SerializeToString())
    assert record.events == [
        {
            "name": "exception",
            "timestamp": "2026-11-20T12:00:00.123457+00:00",
            "attributes": {
                "exception.type": "ValueError",
                "exception.message": "boom",
                "exception.stacktrace": "Traceback (most recent call last): ...",
                "exception.escaped": False,
            },
        },
        {"name": "first token", "timestamp": "2026-11-20T12:00:00.125456+00:00", "attributes": {}},
    ]
    assert datetime.fromisoformat(record.events[0]["timestamp"]).tzinfo == UTC


def test_project_comes_from_the_header_then_the_resource_then_nothing():
    request = pb_request(pb_span(), resource={"openinference.project.name": " from-resource "})
    other = request.resource_spans.add()
    other.scope_spans.add().spans.append(pb_span(span_id=CHILD_ID))
    body = request.SerializeToString()

    with_resource, without = decode_protobuf(body)
    assert (with_resource.project_name, without.project_name) == ("from-resource", None)

    records = decode_protobuf(body, project_name="from-header")
    assert [r.project_name for r in records] == ["from-header", "from-header"]

    records = decode_protobuf(body, project_name="  ")
    assert [r.project_name for r in records] == ["from-resource", None]


def test_a_project_name_too_long_for_the_store_rejects_the_spans_of_its_resource():
    request = pb_request(pb_span(), resource={"openinference.project.name": "p" * 201})
    other = request.resource_spans.add()
    other.scope_spans.add().spans.append(pb_span(span_id=CHILD_ID))

    decoded = spans_from_otlp_protobuf(request.SerializeToString())

    assert [r.span_id for r in decoded.records] == [CHILD_ID.hex()]
    [rejected] = decoded.rejected
    assert (rejected.trace_id, rejected.span_id) == (TRACE_ID.hex(), ROOT_ID.hex())
    assert "project name is longer than 200 characters" in rejected.reason


@pytest.mark.parametrize(
    ("span", "message"),
    [
        (pb_span(trace_id=b"\x01" * 8), "trace_id must be 16 bytes"),
        (pb_span(trace_id=b"\x00" * 16), "trace_id must be 16 bytes, not all zero"),
        (pb_span(span_id=b"\x01" * 16), "span_id must be 8 bytes"),
        (pb_span(span_id=b""), "span_id must be 8 bytes"),
        (pb_span(parent_id=b"\x01" * 4), "parent_span_id must be empty or 8 bytes"),
        (pb_span(end_ns=START_NS - 1_000), "end_time is before start_time"),
        (pb_span(start_ns=0, end_ns=0), "start_time_unix_nano is missing"),
        (pb_span(status_code=7), "status code 7 is not 0, 1 or 2"),
    ],
)
def test_protobuf_invalid_spans_are_left_out_with_a_reason(span: Span, message: str):
    body = pb_request(pb_span(span_id=CHILD_ID), span).SerializeToString()
    decoded = spans_from_otlp_protobuf(body)
    assert [r.span_id for r in decoded.records] == [CHILD_ID.hex()]
    [rejected] = decoded.rejected
    assert message in rejected.reason
    assert repr(span.name) in str(rejected)
    assert span.span_id.hex() in str(rejected)


@pytest.mark.parametrize("body", [b"\xff\xff\xff\xff", b"not a protobuf", b'{"resourceSpans": []}'])
def test_malformed_protobuf_is_refused(body: bytes):
    with pytest.raises(OtlpDecodeError, match="malformed protobuf"):
        spans_from_otlp_protobuf(body)


def test_an_empty_protobuf_request_has_no_spans():
    assert decode_protobuf(b"") == []


# --- JSON -------------------------------------------------------------------------------------

HAND_WRITTEN = {
    "resourceSpans": [
        {
            "resource": {
                "attributes": [
                    {"key": "service.name", "value": {"stringValue": "svc"}},
                    {"key": "openinference.project.name", "value": {"stringValue": "json-proj"}},
                ]
            },
            "scopeSpans": [
                {
                    "scope": {"name": "openinference.instrumentation.openai"},
                    "spans": [
                        {
                            "traceId": "0AF7651916CD43DD8448EB211C80319C",
                            "spanId": "00f067aa0ba902b7",
                            "parentSpanId": "b7ad6b7169203331",
                            "name": "ChatCompletion",
                            "kind": 3,
                            "startTimeUnixNano": str(START_NS),
                            "endTimeUnixNano": END_NS,
                            "attributes": [
                                {"key": "openinference.span.kind", "value": {"stringValue": "LLM"}},
                                {
                                    "key": "llm.token_count.prompt",
                                    "value": {"intValue": "9000000000"},
                                },
                                {"key": "llm.token_count.completion", "value": {"intValue": 12}},
                                {"key": "llm.temperature", "value": {"doubleValue": 0.5}},
                                {"key": "ratio", "value": {"doubleValue": "NaN"}},
                                {"key": "whole", "value": {"doubleValue": 2}},
                                {"key": "llm.stream", "value": {"boolValue": True}},
                                {
                                    "key": "tag.tags",
                                    "value": {
                                        "arrayValue": {
                                            "values": [{"stringValue": "a"}, {"intValue": "2"}, {}]
                                        }
                                    },
                                },
                                {
                                    "key": "kv",
                                    "value": {
                                        "kvlistValue": {
                                            "values": [
                                                {"key": "x", "value": {"boolValue": False}},
                                                {
                                                    "key": "y",
                                                    "value": {"arrayValue": {}},
                                                },
                                            ]
                                        }
                                    },
                                },
                                {"key": "blob", "value": {"bytesValue": "AAH+/w=="}},
                                {"key": "nothing", "value": {}},
                                {"key": "missing"},
                            ],
                            "events": [
                                {
                                    "timeUnixNano": str(START_NS + 1_000),
                                    "name": "exception",
                                    "attributes": [
                                        {
                                            "key": "exception.type",
                                            "value": {"stringValue": "ValueError"},
                                        },
                                        {
                                            "key": "exception.message",
                                            "value": {"stringValue": "boom"},
                                        },
                                        {
                                            "key": "exception.stacktrace",
                                            "value": {"stringValue": "Traceback ..."},
                                        },
                                    ],
                                }
                            ],
                            "status": {"code": 2, "message": "boom"},
                        }
                    ],
                }
            ],
        }
    ]
}


def test_hand_written_otlp_json():
    [record] = decode_json(HAND_WRITTEN)
    assert record.trace_id == "0af7651916cd43dd8448eb211c80319c"
    assert record.span_id == "00f067aa0ba902b7"
    assert record.parent_id == "b7ad6b7169203331"
    assert record.name == "ChatCompletion"
    assert record.start_time == datetime(2026, 11, 20, 12, 0, 0, 123456, tzinfo=UTC)
    assert record.end_time == datetime(2026, 11, 20, 12, 0, 1, 623456, tzinfo=UTC)
    assert (record.status_code, record.status_message) == ("ERROR", "boom")
    assert record.project_name == "json-proj"
    assert record.attributes == {
        "openinference.span.kind": "LLM",
        "llm.token_count.prompt": 9_000_000_000,
        "llm.token_count.completion": 12,
        "llm.temperature": 0.5,
        "ratio": "NaN",
        "whole": 2.0,
        "llm.stream": True,
        "tag.tags": ["a", 2, None],
        "kv": {"x": False, "y": []},
        "blob": "AAH+/w==",
        "nothing": None,
        "missing": None,
    }
    assert record.events == [
        {
            "name": "exception",
            "timestamp": "2026-11-20T12:00:00.123457+00:00",
            "attributes": {
                "exception.type": "ValueError",
                "exception.message": "boom",
                "exception.stacktrace": "Traceback ...",
            },
        }
    ]
    [overridden] = decode_json(HAND_WRITTEN, project_name="header-proj")
    assert overridden.project_name == "header-proj"


def _every_kind_request() -> ExportTraceServiceRequest:
    return pb_request(
        pb_span(name="agent", status_code=Status.STATUS_CODE_OK),
        pb_span(
            span_id=CHILD_ID,
            parent_id=ROOT_ID,
            name="llm",
            status_code=Status.STATUS_CODE_ERROR,
            status_message="boom",
            attributes={
                "s": "text",
                "i": 9_000_000_000,
                "d": 0.25,
                "b": True,
                "a": ["x", 1, [2.5]],
                "kv": {"k": {"n": None}},
                "bytes": b"\x00\xff",
            },
            events=[("exception", START_NS + 5, {"exception.type": "ValueError"})],
        ),
        resource={"openinference.project.name": "p"},
    )


@pytest.mark.parametrize("snake_case", [False, True], ids=["camelCase", "snake_case"])
def test_json_and_protobuf_of_the_same_request_give_the_same_records(snake_case: bool):
    request = _every_kind_request()
    from_protobuf = decode_protobuf(request.SerializeToString())
    from_json = decode_json(otlp_json(request, snake_case=snake_case))
    assert from_json == from_protobuf
    assert len(from_json) == 2


def test_json_accepts_base64_ids_as_protobufs_own_json_mapping_writes_them():
    request = _every_kind_request()
    document = MessageToDict(request)
    assert document["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["traceId"] == (
        base64.b64encode(TRACE_ID).decode()
    )
    assert decode_json(document) == decode_protobuf(request.SerializeToString())


@pytest.mark.parametrize(
    ("code", "expected"),
    [(0, "UNSET"), ("1", "OK"), ("STATUS_CODE_ERROR", "ERROR"), ("STATUS_CODE_OK", "OK")],
)
def test_json_status_codes_as_numbers_or_names(code: Any, expected: str):
    document = otlp_json(pb_request(pb_span()))
    document["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["status"] = {"code": code}
    [record] = decode_json(document)
    assert record.status_code == expected


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"",
        b"\xff\xfe",
        b"[]",
        b'{"resourceSpans": {}}',
        b'{"resourceSpans": [1]}',
        b'{"resourceSpans": [{"scopeSpans": [{"spans": "x"}]}]}',
    ],
)
def test_malformed_json_is_refused(body: bytes):
    with pytest.raises(OtlpDecodeError):
        spans_from_otlp_json(body)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"traceId": "abc"}, "traceId must be 32 hex characters"),
        ({"traceId": "zz" * 16}, "traceId must be 32 hex characters"),
        ({"spanId": None}, "spanId must be a string"),
        ({"parentSpanId": "0102"}, "parentSpanId must be 16 hex characters"),
        ({"endTimeUnixNano": str(START_NS - 1_000_000)}, "end_time is before start_time"),
        ({"startTimeUnixNano": None}, "start_time_unix_nano is missing"),
        ({"status": {"code": 9}}, "status code 9"),
    ],
)
def test_json_invalid_spans_are_left_out_with_a_reason(change: dict[str, Any], message: str):
    document = otlp_json(pb_request(pb_span(name="bad one"), pb_span(span_id=CHILD_ID)))
    document["resourceSpans"][0]["scopeSpans"][0]["spans"][0].update(change)
    decoded = spans_from_otlp_json(json.dumps(document).encode())
    assert [r.span_id for r in decoded.records] == [CHILD_ID.hex()]
    [rejected] = decoded.rejected
    assert message in rejected.reason
    assert "resourceSpans[0].scopeSpans[0].spans[0]" in str(rejected)
    assert "'bad one'" in str(rejected)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"intValue": "twelve"}, r"intValue must be an integer"),
        ({"intValue": True}, r"intValue must be an integer"),
        ({"stringValue": 3}, r"stringValue must be a string"),
        ({"boolValue": "true"}, r"boolValue must be true or false"),
        ({"doubleValue": "fast"}, r"doubleValue must be a number"),
        ({"arrayValue": {"values": {}}}, r"arrayValue.values must be an array"),
        ("plain", r"must be an AnyValue object"),
    ],
)
def test_json_badly_typed_values_are_refused(value: Any, message: str):
    document = otlp_json(pb_request(pb_span()))
    span = document["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    span["attributes"] = [{"key": "k", "value": value}]
    with pytest.raises(OtlpDecodeError, match=message) as info:
        decode_json(document)
    assert "resourceSpans[0].scopeSpans[0].spans[0].attributes[0].value" in str(info.value)


def test_json_with_no_resource_spans_has_no_spans():
    assert decode_json({}) == []
    assert decode_json({"resourceSpans": []}) == []


# --- A request the real SDK encodes ----------------------------------------------------------


def test_a_request_encoded_by_the_opentelemetry_sdk():
    memory = InMemorySpanExporter()
    provider = TracerProvider(
        resource=Resource.create({"openinference.project.name": "sdk-project"})
    )
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("agent") as root:
        root.set_attribute("openinference.span.kind", "AGENT")
        root.set_attribute("session.id", "s-1")
        with tracer.start_as_current_span("llm") as llm:
            llm.set_attribute("openinference.span.kind", "LLM")
            llm.set_attribute("llm.token_count.prompt", 12)
            llm.set_attribute("tag.tags", ["a", "b"])
            llm.record_exception(ValueError("boom"))
            llm.set_status(OtelStatus(OtelStatusCode.ERROR, "boom"))
    provider.shutdown()
    sdk_llm, sdk_root = memory.get_finished_spans()
    request = encode_spans([sdk_llm, sdk_root])

    llm_record, root_record = decode_protobuf(request.SerializeToString())
    assert root_record.trace_id == f"{sdk_root.context.trace_id:032x}"
    assert root_record.span_id == f"{sdk_root.context.span_id:016x}"
    assert root_record.parent_id is None
    assert llm_record.parent_id == root_record.span_id
    assert root_record.project_name == "sdk-project"
    assert llm_record.attributes == {
        "openinference.span.kind": "LLM",
        "llm.token_count.prompt": 12,
        "tag.tags": ["a", "b"],
    }
    assert (llm_record.status_code, llm_record.status_message) == ("ERROR", "boom")
    [exception] = llm_record.events
    assert exception["name"] == "exception"
    assert exception["attributes"]["exception.type"] == "ValueError"
    assert exception["attributes"]["exception.message"] == "boom"
    assert "ValueError: boom" in exception["attributes"]["exception.stacktrace"]
    # Nanosecond times keep their microseconds.
    assert root_record.start_time == datetime.fromtimestamp(sdk_root.start_time // 1000 / 1e6, UTC)
    assert root_record.start_time.microsecond == (sdk_root.start_time // 1000) % 1_000_000

    assert decode_json(otlp_json(request)) == [llm_record, root_record]


# --- Content-Encoding -------------------------------------------------------------------------

PAYLOAD = b"spans " * 10_000


def raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


@pytest.mark.parametrize(
    ("encoding", "body"),
    [
        (None, PAYLOAD),
        ("", PAYLOAD),
        ("identity", PAYLOAD),
        ("none", PAYLOAD),
        ("gzip", gzip.compress(PAYLOAD)),
        ("GZip", gzip.compress(PAYLOAD)),
        ("x-gzip", gzip.compress(PAYLOAD)),
        ("deflate", zlib.compress(PAYLOAD)),
        ("deflate", raw_deflate(PAYLOAD)),
        ("gzip", gzip.compress(PAYLOAD[:30_000]) + gzip.compress(PAYLOAD[30_000:])),
        ("deflate, gzip", gzip.compress(zlib.compress(PAYLOAD))),
        ("gzip, identity", gzip.compress(PAYLOAD)),
    ],
)
def test_body_decompress(encoding: str | None, body: bytes):
    assert body_decompress(body, content_encoding=encoding, max_size=len(PAYLOAD)) == PAYLOAD


@pytest.mark.parametrize("encoding", ["br", "zstd", "gzip, br", "compress"])
def test_unsupported_encodings_are_refused(encoding: str):
    with pytest.raises(UnsupportedEncodingError, match="is not supported"):
        body_decompress(gzip.compress(PAYLOAD), content_encoding=encoding, max_size=10**9)


@pytest.mark.parametrize(
    ("encoding", "body"),
    [
        ("gzip", b"definitely not gzip"),
        ("gzip", gzip.compress(PAYLOAD)[:-20]),
        ("deflate", zlib.compress(PAYLOAD)[:100]),
        ("deflate", b"\x00\x01\x02 not deflate"),
    ],
)
def test_corrupt_or_truncated_bodies_are_refused(encoding: str, body: bytes):
    with pytest.raises(OtlpDecodeError):
        body_decompress(body, content_encoding=encoding, max_size=10**9)


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_decompression_stops_at_the_limit(encoding: str):
    compressed = gzip.compress(PAYLOAD) if encoding == "gzip" else zlib.compress(PAYLOAD)
    with pytest.raises(BodyTooLargeError, match=f"limit of {len(PAYLOAD) - 1} bytes"):
        body_decompress(compressed, content_encoding=encoding, max_size=len(PAYLOAD) - 1)


def test_a_gzip_bomb_is_cut_off_while_streaming():
    """256 MiB of zeros in ~250 KB of gzip: refused with bounded memory, not after inflating."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(1024 * 1024)
    bomb = b"".join(compressor.compress(block) for _ in range(256)) + compressor.flush()
    assert len(bomb) < 512 * 1024

    tracemalloc.start()
    try:
        with pytest.raises(BodyTooLargeError):
            body_decompress(bomb, content_encoding="gzip", max_size=1024 * 1024)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * 1024 * 1024
