"""``POST /v1/traces``: OTLP/HTTP ingest, with Django's test client and the real OTel exporter."""

from __future__ import annotations

import gzip
import json
import select
import socket
import zlib
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from django.db import OperationalError
from django.test import override_settings
from google.rpc.code_pb2 import INVALID_ARGUMENT, UNAVAILABLE
from google.rpc.error_details_pb2 import RetryInfo
from google.rpc.status_pb2 import Status as RpcStatus
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExportResult,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.tracing.ingest.http_factories import (
    RecordingExporter,
    assert_agent_run_stored,
    assert_llm_request_stored,
    assert_nothing_written,
    llm_request,
    run_agent,
)
from tests.tracing.ingest.otlp_factories import (
    END_NS,
    ROOT_ID,
    START_NS,
    TRACE_ID,
    otlp_json,
    pb_request,
    pb_span,
)
from tracing.models import Project, Span, Trace

URL = "/v1/traces"
PROTOBUF = "application/x-protobuf"


def post(client: Any, body: bytes, *, content_type: str = PROTOBUF, **headers: str) -> Any:
    return client.post(URL, data=body, content_type=content_type, headers=headers)


def detail(response: Any) -> str:
    """The reason of a refused request: a ``google.rpc.Status`` message for a protobuf request
    (as OTLP asks), the JSON ``detail`` otherwise."""
    if response["Content-Type"] == PROTOBUF:
        return RpcStatus.FromString(response.content).message
    body = response.json()
    assert body["message"] == body["detail"]
    return body["detail"]


# --- Formats and encodings --------------------------------------------------------------------


@pytest.mark.django_db
def test_protobuf_is_stored_and_answered_in_protobuf(client, auth):
    response = post(client, llm_request().SerializeToString(), **auth)

    assert response.status_code == 200, response.content
    assert response["Content-Type"] == PROTOBUF
    answer = ExportTraceServiceResponse.FromString(response.content)
    assert not answer.HasField("partial_success")
    assert_llm_request_stored()


@pytest.mark.django_db
@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8"])
def test_otlp_json_is_stored_and_answered_in_json(client, auth, content_type):
    body = json.dumps(otlp_json(llm_request())).encode()
    response = post(client, body, content_type=content_type, **auth)

    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json"
    assert response.json() == {}
    assert_llm_request_stored()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("encoding", "compress"),
    [("gzip", gzip.compress), ("deflate", zlib.compress), ("identity", lambda b: b)],
)
@pytest.mark.parametrize("content_type", [PROTOBUF, "application/json"])
def test_compressed_bodies(client, auth, encoding, compress, content_type):
    request = llm_request()
    body = (
        request.SerializeToString()
        if content_type == PROTOBUF
        else json.dumps(otlp_json(request)).encode()
    )
    response = post(
        client, compress(body), content_type=content_type, **auth, **{"Content-Encoding": encoding}
    )
    assert response.status_code == 200, response.content
    assert_llm_request_stored()


@pytest.mark.django_db
def test_an_empty_request_is_accepted(client, auth):
    response = client.post(
        URL,
        data=b"",
        content_type=PROTOBUF,
        headers=auth,
        CONTENT_TYPE=PROTOBUF,
        CONTENT_LENGTH="0",
    )
    assert response.status_code == 200
    assert response.content == b""
    assert_nothing_written()


# --- Authentication and method ----------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-key"},
        {"Authorization": "Basic Zm9vOmJhcg=="},
        {"api_key": "wrong-key"},
    ],
    ids=["none", "wrong-bearer", "basic", "wrong-api_key"],
)
def test_requests_without_a_valid_key_are_refused(client, api_key, headers):
    response = post(client, llm_request().SerializeToString(), **headers)
    assert response.status_code == 401
    assert "API key" in detail(response)
    assert_nothing_written()


@pytest.mark.django_db
def test_the_api_key_header_is_accepted(client, api_key):
    response = post(client, llm_request().SerializeToString(), api_key=api_key)
    assert response.status_code == 200, response.content
    assert_llm_request_stored()


@pytest.mark.django_db
def test_only_post_is_allowed(client, auth):
    response = client.get(URL, headers=auth)
    assert response.status_code == 405
    assert response["Allow"] == "POST"
    assert "GET" in response.json()["detail"]


# --- Refused requests write nothing -----------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("content_type", ["text/plain", "application/grpc", "multipart/form-data"])
def test_unsupported_content_types(client, auth, content_type):
    response = post(client, llm_request().SerializeToString(), content_type=content_type, **auth)
    assert response.status_code == 415
    assert content_type in response.json()["detail"]
    assert_nothing_written()


@pytest.mark.django_db
def test_unsupported_content_encoding(client, auth):
    body = llm_request().SerializeToString()
    response = post(client, body, **auth, **{"Content-Encoding": "br"})
    assert response.status_code == 415
    assert "'br' is not supported" in detail(response)
    assert_nothing_written()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("content_type", "body", "message"),
    [
        (PROTOBUF, b"\xff\xff\xff\xff garbage", "malformed protobuf"),
        ("application/json", b'{"resourceSpans": [', "malformed JSON"),
        ("application/json", b'{"resourceSpans": 3}', "resourceSpans must be an array"),
    ],
)
def test_malformed_payloads(client, auth, content_type, body, message):
    response = post(client, body, content_type=content_type, **auth)
    assert response.status_code == 400
    assert message in detail(response)
    if content_type == PROTOBUF:
        assert RpcStatus.FromString(response.content).code == INVALID_ARGUMENT
    assert_nothing_written()


@pytest.mark.django_db
def test_a_corrupt_gzip_body(client, auth):
    body = gzip.compress(llm_request().SerializeToString())[:-30]
    response = post(client, body, **auth, **{"Content-Encoding": "gzip"})
    assert response.status_code == 400
    assert "gzip" in detail(response)
    assert_nothing_written()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("bad_span", "reason"),
    [
        (pb_span(span_id=bytes(range(1, 9)), trace_id=b"\x01\x02"), "trace_id must be 16 bytes"),
        (pb_span(span_id=bytes(range(1, 9)), trace_id=bytes(16)), "not all zero"),
        (pb_span(span_id=bytes(range(1, 9)), end_ns=START_NS - 10**9), "end_time is before"),
    ],
)
@pytest.mark.parametrize("as_json", [False, True], ids=["protobuf", "json"])
def test_invalid_spans_are_left_out_and_the_others_stored(client, auth, bad_span, reason, as_json):
    """OTLP partial success: 200, the valid spans stored, the rejected ones counted and named."""
    request = llm_request()
    request.resource_spans[0].scope_spans[0].spans.append(bad_span)
    if as_json:
        reason = reason.replace("trace_id must be 16 bytes", "traceId must be 32 hex characters")
        body = json.dumps(otlp_json(request)).encode()
        response = post(client, body, content_type="application/json", **auth)
        assert response.status_code == 200, response.content
        partial = response.json()["partialSuccess"]
        rejected, message = int(partial["rejectedSpans"]), partial["errorMessage"]
    else:
        response = post(client, request.SerializeToString(), **auth)
        assert response.status_code == 200, response.content
        partial = ExportTraceServiceResponse.FromString(response.content).partial_success
        rejected, message = partial.rejected_spans, partial.error_message
    assert rejected == 1
    assert reason in message
    assert "0102030405060708" in message
    assert_llm_request_stored()
    assert not Span.objects.filter(span_id="0102030405060708").exists()


@pytest.mark.django_db
def test_a_body_over_the_limit_by_content_length(client, auth):
    body = llm_request().SerializeToString()
    with override_settings(EVALHUB_MAX_BODY_SIZE=len(body) - 1):
        response = post(client, body, **auth)
    assert response.status_code == 413
    assert f"limit of {len(body) - 1} bytes" in detail(response)
    assert_nothing_written()


@pytest.mark.django_db
def test_a_content_length_claiming_too_much_is_refused_before_reading(client, auth):
    body = llm_request().SerializeToString()
    # The test client's payload refuses reads past its end, so this also proves nothing is read.
    response = client.post(
        URL, data=body, content_type=PROTOBUF, headers=auth, CONTENT_LENGTH=str(64 * 1024**2)
    )
    assert response.status_code == 413
    assert_nothing_written()


@pytest.mark.django_db
def test_a_missing_content_length_is_refused(client, auth):
    response = client.post(
        URL, data=b"", content_type=PROTOBUF, headers=auth, CONTENT_TYPE=PROTOBUF
    )
    assert response.status_code == 411
    assert "Content-Length" in detail(response)


@pytest.mark.django_db
@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_a_compression_bomb_is_refused(client, auth, encoding):
    # A real request padded with 16 MiB of zeros in an attribute: ~16 KB on the wire.
    request = llm_request()
    request.resource_spans[0].scope_spans[0].spans[0].attributes.add(
        key="padding"
    ).value.string_value = "\0" * (16 * 1024 * 1024)
    raw = request.SerializeToString()
    body = gzip.compress(raw) if encoding == "gzip" else zlib.compress(raw)
    assert len(body) < 64 * 1024
    with override_settings(EVALHUB_MAX_BODY_SIZE=1024 * 1024):
        response = post(client, body, **auth, **{"Content-Encoding": encoding})
    assert response.status_code == 413
    assert "decompressed body is larger than the limit of 1048576 bytes" in detail(response)
    assert_nothing_written()


@pytest.mark.django_db
@pytest.mark.parametrize("as_json", [False, True], ids=["protobuf", "json"])
def test_a_busy_database_answers_503_so_the_exporter_retries(client, auth, monkeypatch, as_json):
    def busy(**kwargs: Any) -> None:
        raise OperationalError("database is locked")

    monkeypatch.setattr("tracing.ingest.http.otlp_ingest", busy)
    request = llm_request()
    if as_json:
        body = json.dumps(otlp_json(request)).encode()
        response = post(client, body, content_type="application/json", **auth)
    else:
        response = post(client, request.SerializeToString(), **auth)
    assert response.status_code == 503
    assert response["Retry-After"] == "1"
    assert "retry" in detail(response)
    if not as_json:
        status = RpcStatus.FromString(response.content)
        assert status.code == UNAVAILABLE
        retry = RetryInfo()
        assert status.details[0].Unpack(retry)
        assert retry.retry_delay.seconds == 1


@pytest.mark.django_db
def test_a_nul_character_rejects_its_span_on_every_database(client, auth):
    """PostgreSQL refuses NUL characters in text and jsonb: such a span is left out (with the
    attribute named), on SQLite too, and the other spans are stored."""
    request = llm_request()
    request.resource_spans[0].scope_spans[0].spans.append(
        pb_span(span_id=bytes(range(1, 9)), attributes={"input.value": "before\x00after"})
    )
    response = post(client, request.SerializeToString(), **auth)
    assert response.status_code == 200, response.content
    partial = ExportTraceServiceResponse.FromString(response.content).partial_success
    assert partial.rejected_spans == 1
    assert "input.value contains a NUL character" in partial.error_message
    assert_llm_request_stored()
    assert Span.objects.count() == 2


# --- What is stored ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_span_received_twice_is_stored_once(client, auth):
    body = llm_request().SerializeToString()
    assert post(client, body, **auth).status_code == 200
    assert post(client, body, **auth).status_code == 200
    assert Span.objects.count() == 2
    assert_llm_request_stored()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("resource", "headers", "project"),
    [
        ({}, {}, "default"),
        ({"openinference.project.name": "from-resource"}, {}, "from-resource"),
        ({"openinference.project.name": "from-resource"}, {"x-project-name": "hdr"}, "hdr"),
        ({}, {"x-project-name": "hdr"}, "hdr"),
    ],
)
def test_the_project_comes_from_the_header_the_resource_or_the_default(
    client, auth, resource, headers, project
):
    response = post(client, llm_request(**resource).SerializeToString(), **auth, **headers)
    assert response.status_code == 200, response.content
    assert_llm_request_stored(project=project)
    assert list(Project.objects.values_list("name", flat=True)) == [project]


@pytest.mark.django_db
def test_children_before_parents_across_two_requests(client, auth):
    request = llm_request()
    root, child = request.resource_spans[0].scope_spans[0].spans
    first, second = pb_request(child), pb_request(root)

    assert post(client, first.SerializeToString(), **auth).status_code == 200
    trace = Trace.objects.get(trace_id=TRACE_ID.hex())
    assert (trace.root_span_id, trace.root_span_name, trace.span_count) == (
        None,
        "ChatCompletion",
        1,
    )

    assert post(client, second.SerializeToString(), **auth).status_code == 200
    trace.refresh_from_db()
    assert (trace.root_span_id, trace.root_span_name, trace.span_count) == (
        ROOT_ID.hex(),
        "agent",
        2,
    )
    assert trace.start_time == datetime(2026, 11, 20, 12, 0, 0, 123456, tzinfo=UTC)
    assert trace.end_time - trace.start_time == timedelta(microseconds=(END_NS - START_NS) // 1000)
    assert_llm_request_stored()


# --- The real OpenTelemetry exporter against a live server ------------------------------------


@pytest.mark.usefixtures("transactional_db")
def test_the_opentelemetry_exporter_with_the_api_key_header(live_server, api_key):
    exporter = RecordingExporter(
        endpoint=f"{live_server.url}/v1/traces", headers={"api_key": api_key}
    )
    provider = TracerProvider(
        resource=Resource.create(
            {"service.name": "support-agent", "openinference.project.name": "support"}
        )
    )
    provider.add_span_processor(BatchSpanProcessor(exporter))

    trace_id, _ = run_agent(provider)
    assert provider.force_flush(timeout_millis=15_000)
    provider.shutdown()

    assert exporter.results and set(exporter.results) == {SpanExportResult.SUCCESS}
    assert_agent_run_stored(trace_id, project="support")


@pytest.mark.usefixtures("transactional_db")
def test_the_opentelemetry_exporter_with_a_bearer_key_a_project_header_and_gzip(
    live_server, api_key
):
    exporter = RecordingExporter(
        endpoint=f"{live_server.url}/v1/traces",
        headers={"Authorization": f"Bearer {api_key}", "x-project-name": "from-header"},
        compression=Compression.Gzip,
    )
    provider = TracerProvider(
        resource=Resource.create({"openinference.project.name": "from-resource"})
    )
    provider.add_span_processor(SimpleSpanProcessor(exporter))

    trace_id, _ = run_agent(provider)
    assert provider.force_flush(timeout_millis=15_000)
    provider.shutdown()

    assert len(exporter.results) == 3  # one export per span
    assert set(exporter.results) == {SpanExportResult.SUCCESS}
    assert_agent_run_stored(trace_id, project="from-header")
    assert not Project.objects.filter(name="from-resource").exists()


@pytest.mark.usefixtures("transactional_db")
def test_the_opentelemetry_exporter_with_a_wrong_key_fails_and_writes_nothing(live_server, api_key):
    exporter = RecordingExporter(
        endpoint=f"{live_server.url}/v1/traces", headers={"api_key": "not-the-key"}
    )
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))

    run_agent(provider)
    provider.shutdown()

    assert exporter.results == [SpanExportResult.FAILURE] * 3
    assert_nothing_written()


@pytest.mark.usefixtures("transactional_db")
def test_otlp_json_of_sdk_spans_over_http(live_server, api_key):
    """The OTLP JSON shape (as JSON exporters send it) of spans made by the real SDK."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"openinference.project.name": "json"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    trace_id, _ = run_agent(provider)
    provider.shutdown()
    body = json.dumps(otlp_json(encode_spans(memory.get_finished_spans()))).encode()

    response = requests.post(
        f"{live_server.url}/v1/traces",
        data=gzip.compress(body),
        headers={
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
            "Authorization": f"Bearer {api_key}",
        },
        timeout=15,
    )

    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {}
    assert_agent_run_stored(trace_id, project="json")


# --- Chunked bodies and slow clients, under gunicorn ------------------------------------------


def raw_post(
    port: int,
    headers: dict[str, str],
    chunks: Iterable[bytes],
    *,
    chunked: bool = True,
    path: str = URL,
) -> tuple[int, bytes, int]:
    """POST over a raw socket, the body sent chunk by chunk (in chunked transfer coding unless
    ``chunked`` is false), stopping as soon as the server answers: the status, the body, and
    how many body bytes were sent."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    head = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close"]
    if chunked:
        head.append("Transfer-Encoding: chunked")
    head.extend(f"{name}: {value}" for name, value in headers.items())
    sent = 0
    with sock:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        try:
            for chunk in chunks:
                if select.select([sock], [], [], 0)[0]:
                    break  # answered already
                sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n" if chunked else chunk)
                sent += len(chunk)
            else:
                if chunked:
                    sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed while we were sending
        answer = b""
        while data := sock.recv(65536):
            answer += data
    head_bytes, _, body = answer.partition(b"\r\n\r\n")
    status = int(head_bytes.split(b" ", 2)[1])
    if b"transfer-encoding: chunked" in head_bytes.lower():
        body = _dechunk(body)
    return status, body, sent


def _dechunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out, data = out + data[:size], data[size + 2 :]
    return out


def pieces(body: bytes, size: int = 100) -> Iterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


@pytest.mark.usefixtures("transactional_db")
@pytest.mark.parametrize("gzipped", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("as_json", [False, True], ids=["protobuf", "json"])
def test_a_chunked_body_is_read_to_its_end(gunicorn_server, api_key, gzipped, as_json):
    request = llm_request()
    body = json.dumps(otlp_json(request)).encode() if as_json else request.SerializeToString()
    headers = {
        "Content-Type": "application/json" if as_json else PROTOBUF,
        "Authorization": f"Bearer {api_key}",
    }
    if gzipped:
        body = gzip.compress(body)
        headers["Content-Encoding"] = "gzip"

    status, answer, _ = raw_post(gunicorn_server.port, headers, pieces(body))

    assert status == 200, answer
    assert answer == (b"{}" if as_json else b"")
    assert_llm_request_stored()


@pytest.mark.usefixtures("transactional_db")
@pytest.mark.parametrize("gzipped", [False, True], ids=["plain", "gzip"])
def test_a_chunked_body_past_the_limit_is_refused_without_reading_the_rest(
    gunicorn_server, api_key, gzipped
):
    """The server has a 1 MiB limit; the client would send 64 MiB (or a gzip stream that
    inflates past the limit) and stops when the answer comes."""
    headers = {"Content-Type": PROTOBUF, "Authorization": f"Bearer {api_key}"}
    if gzipped:
        request = llm_request()
        request.resource_spans[0].scope_spans[0].spans[0].attributes.add(
            key="padding"
        ).value.string_value = "\0" * (4 * 1024 * 1024)
        chunks: Iterable[bytes] = pieces(gzip.compress(request.SerializeToString()), 1024)
        headers["Content-Encoding"] = "gzip"
    else:
        chunks = (bytes(64 * 1024) for _ in range(1024))

    status, answer, sent = raw_post(gunicorn_server.port, headers, chunks)

    assert status == 413, answer
    assert "limit of 1048576 bytes" in RpcStatus.FromString(answer).message
    assert sent < 64 * 1024 * 1024
    assert_nothing_written()


@pytest.mark.usefixtures("transactional_db")
@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "content-length"])
def test_a_body_that_stops_arriving_is_answered_408(gunicorn_server, api_key, chunked):
    """The server's WEB_BODY_TIMEOUT is 2 s: the request ends instead of holding a thread."""
    first = llm_request().SerializeToString()[:20]
    framing = (
        f"Transfer-Encoding: chunked\r\n\r\n{len(first):x}\r\n".encode() + first + b"\r\n"
        if chunked
        else b"Content-Length: 100000\r\n\r\n" + first
    )
    with socket.create_connection(("127.0.0.1", gunicorn_server.port), timeout=30) as sock:
        sock.sendall(
            f"POST {URL} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {PROTOBUF}\r\n"
            f"api_key: {api_key}\r\n".encode()
            + framing
        )
        answer = b""
        while data := sock.recv(65536):  # the rest never comes; the server answers first
            answer += data
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), answer
    if b"chunked" in head.lower():
        body = _dechunk(body)
    assert "stopped arriving" in RpcStatus.FromString(body).message
    assert_nothing_written()


@pytest.mark.usefixtures("transactional_db")
def test_a_body_that_trickles_in_too_slowly_is_answered_408(gunicorn_server, api_key):
    """2 s plus one more per 1,000 bytes received: 10 bytes every 0.3 s is far too slow."""
    with socket.create_connection(("127.0.0.1", gunicorn_server.port), timeout=30) as sock:
        sock.sendall(
            f"POST {URL} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {PROTOBUF}\r\n"
            f"api_key: {api_key}\r\nContent-Length: 100000\r\n\r\n".encode()
        )
        sent = 0
        while not select.select([sock], [], [], 0.3)[0]:  # until the server answers
            sock.sendall(bytes(10))
            sent += 10
        answer = b""
        while data := sock.recv(65536):
            answer += data
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert sent < 1000
    assert_nothing_written()


@pytest.mark.usefixtures("transactional_db")
def test_requests_after_one_on_the_same_connection_are_read_normally(gunicorn_server, api_key):
    """Keep-alive: the body timeout of one request does not carry over to the next."""
    request = llm_request()
    root, child = request.resource_spans[0].scope_spans[0].spans
    headers = {"Content-Type": PROTOBUF, "api_key": api_key}
    with requests.Session() as session:
        for part in (pb_request(child), pb_request(root)):
            response = session.post(
                f"{gunicorn_server.url}{URL}",
                data=part.SerializeToString(),
                headers=headers,
                timeout=30,
            )
            assert response.status_code == 200, response.content
    assert_llm_request_stored()


@pytest.mark.usefixtures("transactional_db")
def test_slow_clients_do_not_block_other_requests(gunicorn_server, api_key):
    """Two clients trickling bodies held both sync workers; gthread threads serve on."""
    sockets = []
    try:
        for _ in range(2):
            sock = socket.create_connection(("127.0.0.1", gunicorn_server.port), timeout=30)
            sock.sendall(
                (
                    f"POST {URL} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {PROTOBUF}\r\n"
                    f"api_key: {api_key}\r\nContent-Length: 100000\r\n\r\n"
                ).encode()
                + b"\x0a"
            )
            sockets.append(sock)
        response = requests.get(f"{gunicorn_server.url}/healthz", timeout=20)
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}
        # The slow clients are still waiting for their answers.
        assert not any(select.select(sockets, [], [], 0)[0])
    finally:
        for sock in sockets:
            sock.close()


@pytest.mark.usefixtures("transactional_db")
def test_django_dev_server_refuses_a_chunked_body_with_a_clear_411(live_server, api_key):
    """Django's development server cannot pass chunked bodies to the application; EvalHub
    says so instead of reading an empty body."""
    port = int(live_server.url.rsplit(":", 1)[1])
    headers = {"Content-Type": "application/json", "api_key": api_key}
    body = json.dumps(otlp_json(llm_request())).encode()
    status, answer, _ = raw_post(port, headers, pieces(body))
    assert status == 411
    assert "cannot read a chunked body" in json.loads(answer)["detail"]
    assert_nothing_written()
