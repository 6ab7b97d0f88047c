"""Bad input on every write path answers 4xx naming the field and writes nothing (or, for OTLP,
exactly the valid spans: partial success) — never a 5xx.

Paths: OTLP over HTTP (protobuf and JSON) and gRPC, the Phoenix-shaped span log
(``POST /v1/projects/{p}/spans``, all or nothing) and the annotation writes. Inputs: NUL
characters (PostgreSQL refuses them in text and jsonb), NaN/Infinity (not JSON), JSON nested
2,000 deep, an attribute key with 3,000 dots, a batch of more distinct traces than one statement
can bind (PostgreSQL's 65,535 parameters), span times in 1970 or centuries ahead, and a span id
already stored in another project.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from annotations.models import Annotation, AnnotationConfig
from tests import factories
from tests.tracing.conftest import phoenix_span
from tests.tracing.ingest.grpc_factories import export_raw
from tests.tracing.ingest.otlp_factories import (
    CHILD_ID,
    ROOT_ID,
    START_NS,
    TRACE_ID,
    otlp_json,
    pb_request,
    pb_span,
)
from tracing.models import Project, Span, Trace

pytestmark = pytest.mark.usefixtures("transactional_db")

DEEP = "[" * 2000 + "]" * 2000
DEEP_OBJECT = '{"a": ' * 2000 + "1" + "}" * 2000
DOTTED_KEY = "x" + ".x" * 3000


def counts() -> tuple[int, int, int]:
    return Span.objects.count(), Trace.objects.count(), Annotation.objects.count()


# --- OTLP: HTTP protobuf, HTTP JSON, gRPC -----------------------------------------------------


@pytest.fixture(params=["http-protobuf", "http-json", "grpc"])
def export(request, client, api_key) -> Any:  # type: ignore[no-untyped-def]
    """Sends an ``ExportTraceServiceRequest`` by one transport; returns the number of spans
    rejected and the error message of the partial success (a 200 / OK in every case)."""
    transport = request.param
    endpoint = request.getfixturevalue("grpc_endpoint") if transport == "grpc" else ""

    def send(message: ExportTraceServiceRequest) -> tuple[int, str]:
        if transport == "grpc":
            answer = export_raw(endpoint, message.SerializeToString(), [("api_key", api_key)])
            partial = ExportTraceServiceResponse.FromString(answer).partial_success
            return partial.rejected_spans, partial.error_message
        if transport == "http-json":
            response = client.post(
                "/v1/traces",
                json.dumps(otlp_json(message)),
                content_type="application/json",
                headers={"api_key": api_key},
            )
            assert response.status_code == 200, response.content
            partial = response.json().get("partialSuccess", {})
            return int(partial.get("rejectedSpans", 0)), partial.get("errorMessage", "")
        response = client.post(
            "/v1/traces",
            message.SerializeToString(),
            content_type="application/x-protobuf",
            headers={"api_key": api_key},
        )
        assert response.status_code == 200, response.content
        partial = ExportTraceServiceResponse.FromString(response.content).partial_success
        return partial.rejected_spans, partial.error_message

    return send


def with_a_good_span(bad: Any, **resource: Any) -> ExportTraceServiceRequest:
    """A request with one valid span (ROOT_ID) and ``bad``."""
    return pb_request(pb_span(), bad, resource=resource)


def assert_only_the_good_span_stored() -> None:
    assert list(Span.objects.values_list("span_id", flat=True)) == [ROOT_ID.hex()]
    assert list(Trace.objects.values_list("trace_id", flat=True)) == [TRACE_ID.hex()]


@pytest.mark.parametrize(
    ("attributes", "named"),
    [
        ({"input.value": "a\x00b"}, "input.value contains a NUL character"),
        ({"output.value": "\x00"}, "output.value contains a NUL character"),
        ({"custom": "nul \x00 inside"}, "attribute 'custom': contains a NUL character"),
        ({"bad\x00key": 1}, "the key contains a NUL character"),
        ({"tags": ["ok", "no\x00"]}, "attribute 'tags'[1]: contains a NUL character"),
        ({DOTTED_KEY: 1}, "its key has 3001 dot-separated parts, more than 254"),
        ({"metadata": DEEP_OBJECT}, "metadata: the JSON is nested deeper than 254 levels"),
        ({"metadata": '{"k\\u0000": 1}'}, "metadata.k\\x00: the key contains a NUL character"),
    ],
    ids=[
        "nul-input",
        "nul-output",
        "nul-attribute",
        "nul-key",
        "nul-array",
        "3000-dots",
        "deep-metadata",
        "nul-metadata-key",
    ],
)
def test_otlp_refuses_unstorable_attributes_span_by_span(export, attributes, named):
    bad = pb_span(span_id=CHILD_ID, name="bad", attributes=attributes)
    rejected, message = export(with_a_good_span(bad))
    assert rejected == 1
    assert named in message
    assert CHILD_ID.hex() in message
    assert_only_the_good_span_stored()


@pytest.mark.parametrize(
    ("start_ns", "end_ns", "named"),
    [
        (1_000_000_000, 2_000_000_000, "start_time 1970-01-01T00:00:01+00:00 is before 2000-01-01"),
        (START_NS, 13_000_000_000_000_000_000, "end_time 2381-"),
        (13_000_000_000_000_000_000, 13_000_000_001_000_000_000, "start_time 2381-"),
    ],
    ids=["1970", "end-far-ahead", "start-far-ahead"],
)
def test_otlp_refuses_span_times_outside_the_window(export, start_ns, end_ns, named):
    bad = pb_span(span_id=CHILD_ID, start_ns=start_ns, end_ns=end_ns)
    rejected, message = export(with_a_good_span(bad))
    assert rejected == 1
    assert named in message
    assert_only_the_good_span_stored()


def test_otlp_refuses_a_span_id_stored_in_another_project_and_leaves_no_empty_trace(export):
    factories.ingest([factories.span_record(span_id=CHILD_ID.hex(), trace_id="f" * 32)], "first")
    bad = pb_span(span_id=CHILD_ID, trace_id=bytes.fromhex("e" * 32))

    rejected, message = export(with_a_good_span(bad, **{"openinference.project.name": "second"}))

    assert rejected == 1
    assert (
        f"span id {CHILD_ID.hex()} is already stored in trace {'f' * 32} (project 'first')"
        in message
    )
    assert set(Trace.objects.values_list("trace_id", flat=True)) == {"f" * 32, TRACE_ID.hex()}
    assert Span.objects.get(span_id=CHILD_ID.hex()).project.name == "first"
    assert Span.objects.get(span_id=ROOT_ID.hex()).project.name == "second"


def test_otlp_stores_a_batch_of_more_distinct_traces_than_one_statement_binds(export):
    """7,000 traces: past the ~5,950 that used to hit PostgreSQL's 65,535-parameter limit."""
    spans = [
        pb_span(
            trace_id=(n + 1).to_bytes(16, "big"),
            span_id=(n + 1).to_bytes(8, "big"),
            attributes={"session.id": f"s{n % 3000}"},
        )
        for n in range(7000)
    ]
    rejected, message = export(pb_request(*spans))
    assert (rejected, message) == (0, "")
    assert (Span.objects.count(), Trace.objects.count()) == (7000, 7000)
    assert sum(Trace.objects.values_list("span_count", flat=True)) == 7000


def test_otlp_a_request_that_cannot_be_read_is_still_400(client, api_key):
    for body, content_type in (
        (b"\xff\xff garbage", "application/x-protobuf"),
        (DEEP.encode(), "application/json"),
    ):
        response = client.post(
            "/v1/traces", body, content_type=content_type, headers={"api_key": api_key}
        )
        assert response.status_code == 400
    assert counts() == (0, 0, 0)


def test_otlp_keeps_non_finite_doubles_as_text(client, api_key):
    """NaN is a valid protobuf double; it is stored as the string JSON can hold."""
    request = pb_request(pb_span(attributes={"score": float("nan"), "big": float("inf")}))
    response = client.post(
        "/v1/traces",
        request.SerializeToString(),
        content_type="application/x-protobuf",
        headers={"api_key": api_key},
    )
    assert response.status_code == 200
    assert Span.objects.get().attributes == {"score": "NaN", "big": "Infinity"}


# --- The Phoenix-shaped span log: all or nothing ----------------------------------------------


def log_spans(client: Any, api_key: str, raw_body: str, project: str = "p") -> Any:
    Project.objects.get_or_create(name=project)
    return client.post(
        f"/v1/projects/{project}/spans",
        raw_body,
        content_type="application/json",
        headers={"api_key": api_key},
    )


def body_with(span: dict[str, Any]) -> str:
    return json.dumps({"data": [phoenix_span(), span]})


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        (
            '{"data": [{"name": "s", "attributes": {"x": NaN}}]}',
            "data[0].attributes.x: NaN is not a JSON number",
        ),
        (
            '{"data": [{"name": "s", "attributes": {"x": -Infinity}}]}',
            "data[0].attributes.x: -Infinity is not a JSON number",
        ),
        (
            '{"data": [{"name": "s", "attributes": {"input.value": "a\\u0000b"}}]}',
            "data[0].attributes.input.value: contains a NUL character",
        ),
        (
            '{"data": [{"name": "s", "attributes": {"metadata": ' + DEEP_OBJECT + "}}]}",
            "data[0].attributes.metadata.a.a…: nested deeper than 254 levels",
        ),
    ],
    ids=["nan", "infinity", "nul", "deep-metadata"],
)
def test_span_log_refuses_a_body_that_cannot_be_stored(client, api_key, raw, named):
    response = log_spans(client, api_key, raw)
    assert response.status_code == 400
    assert response.json()["detail"].startswith(named)
    assert counts() == (0, 0, 0)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"attributes": {DOTTED_KEY: 1}}, "its key has 3001 dot-separated parts"),
        (
            {"start_time": "1970-01-01T00:00:00+00:00"},
            "start_time 1970-01-01T00:00:00+00:00 is before 2000-01-01",
        ),
        (
            {"end_time": "9999-12-31T00:00:00+00:00"},
            "end_time 9999-12-31T00:00:00+00:00 is more than 86400 s in the future",
        ),
    ],
    ids=["3000-dots", "1970", "9999"],
)
def test_span_log_refuses_the_batch_naming_the_span(client, api_key, change, named):
    bad = {**phoenix_span(name="bad"), **change}
    if "start_time" in change:
        bad["end_time"] = "1970-01-01T00:00:01+00:00"
    response = log_spans(client, api_key, body_with(bad))
    assert response.status_code == 400
    body = response.json()
    [invalid] = body["invalid_spans"]
    assert invalid["span_id"] == bad["context"]["span_id"]
    assert named in invalid["error"]
    assert counts() == (0, 0, 0)


def test_span_log_refuses_a_span_id_stored_in_another_project(client, api_key):
    factories.ingest([factories.span_record(span_id="a" * 16, trace_id="f" * 32)], "first")
    bad = phoenix_span(span_id="a" * 16, trace_id="e" * 32)
    response = log_spans(client, api_key, body_with(bad), project="second")
    assert response.status_code == 400
    assert "a" * 16 in response.json()["detail"]
    assert counts() == (1, 1, 0)


# --- Annotation writes ------------------------------------------------------------------------


def annotate(client: Any, api_key: str, url: str, raw_body: str) -> Any:
    return client.post(url, raw_body, content_type="application/json", headers={"api_key": api_key})


@pytest.fixture
def span() -> Span:
    return factories.trace()[0]


def annotation(span: Span, **fields: Any) -> dict[str, Any]:
    return {
        "span_id": span.span_id,
        "name": "quality",
        "annotator_kind": "HUMAN",
        "result": {"label": "good"},
        **fields,
    }


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"result": {"label": "go\x00od"}}, "data[0].result.label: contains a NUL character"),
        (
            {"result": {"explanation": "\x00"}},
            "data[0].result.explanation: contains a NUL character",
        ),
        ({"name": "qual\x00ity"}, "data[0].name: contains a NUL character"),
        ({"metadata": {"a\x00b": 1}}, "data[0].metadata.a\\x00b: the key contains a NUL character"),
        (
            {"metadata": {"nested": {"x": ["\x00"]}}},
            "data[0].metadata.nested.x[0]: contains a NUL character",
        ),
        ({"identifier": "\x00"}, "data[0].identifier: contains a NUL character"),
    ],
    ids=["label", "explanation", "name", "metadata-key", "metadata-value", "identifier"],
)
def test_span_annotations_refuse_nul_characters_naming_the_field(
    client, api_key, span, fields, named
):
    before = counts()
    body = json.dumps({"data": [annotation(span, **fields)]})
    response = annotate(client, api_key, "/v1/span_annotations", body)
    assert response.status_code == 400
    assert response.json()["detail"].startswith(named)
    assert counts() == before


@pytest.mark.parametrize(
    ("url", "raw"),
    [
        (
            "/v1/span_annotations",
            '{"data": [{"span_id": "S", "name": "n", "annotator_kind": "HUMAN", "result": {"label": "x"}, "metadata": '
            + DEEP_OBJECT
            + "}]}",
        ),
        (
            "/v1/trace_annotations",
            '{"data": [{"trace_id": "T", "name": "n", "annotator_kind": "HUMAN", "result": {"label": "x"}, "metadata": '
            + DEEP_OBJECT
            + "}]}",
        ),
        (
            "/v1/projects/default/span_annotations/batch",
            '{"data": [{"span_id": "S", "annotations": [{"name": "n", "label": "x", "metadata": '
            + DEEP_OBJECT
            + "}]}]}",
        ),
        (
            "/v1/projects/default/evaluations/records",
            '{"records": [{"context.span_id": "S", "eval.n.label": "x", "meta": '
            + DEEP_OBJECT
            + "}]}",
        ),
    ],
    ids=["span", "trace", "batch", "records"],
)
def test_annotation_writes_refuse_metadata_nested_2000_deep(client, api_key, span, url, raw):
    raw = raw.replace('"S"', json.dumps(span.span_id)).replace(
        '"T"', json.dumps(span.trace.trace_id)
    )
    before = counts()
    response = annotate(client, api_key, url, raw)
    assert response.status_code == 400
    assert "nested deeper than 254 levels" in response.json()["detail"]
    assert response.json()["detail"].startswith(("data[0]", "records[0]"))
    assert counts() == before


@pytest.mark.parametrize(
    ("url", "body", "named"),
    [
        (
            "/v1/span_notes",
            lambda s: {"data": {"span_id": s.span_id, "note": "no\x00te"}},
            "data.note: contains a NUL character",
        ),
        (
            "/v1/projects/default/span_annotations/batch",
            lambda s: {
                "data": [{"span_id": s.span_id, "annotations": [{"name": "n", "label": "\x00"}]}]
            },
            "data[0].annotations[0].label: contains a NUL character",
        ),
        (
            "/v1/projects/default/evaluations/records",
            lambda s: {"records": [{"context.span_id": s.span_id, "eval.n.label": "a\x00"}]},
            "records[0].eval.n.label: contains a NUL character",
        ),
        (
            "/v1/annotation_configs",
            lambda s: {"name": "conf\x00ig", "type": "FREEFORM"},
            "name: contains a NUL character",
        ),
    ],
    ids=["note", "batch", "records", "config"],
)
def test_other_annotation_writes_refuse_nul_characters(client, api_key, span, url, body, named):
    before = counts(), AnnotationConfig.objects.count()
    response = annotate(client, api_key, url, json.dumps(body(span)))
    assert response.status_code == 400
    assert response.json()["detail"].startswith(named)
    assert (counts(), AnnotationConfig.objects.count()) == before


def test_evaluation_records_still_take_nan_as_a_missing_value(client, api_key, span):
    """Data frames mark a missing cell with NaN: that route reads it so, as before."""
    raw = json.dumps(
        {
            "records": [
                {
                    "context.span_id": span.span_id,
                    "eval.n.label": "ok",
                    "eval.n.score": float("nan"),
                }
            ]
        }
    )
    response = annotate(client, api_key, "/v1/projects/default/evaluations/records", raw)
    assert response.status_code == 200, response.content
    assert Annotation.objects.get().score is None


def test_no_time_window_refusal_for_spans_inside_it():
    """The window's edges: 2000-01-01 is in, a day ahead of now is in."""
    now = datetime.now(UTC)
    records = [
        factories.span_record(start=datetime(2000, 1, 1, tzinfo=UTC)),
        factories.span_record(start=now + timedelta(hours=23), latency_ms=1000),
    ]
    assert len(factories.ingest(records)) == 2
