"""OTLP/gRPC ingest (``tracing.ingest.grpc``): the real OpenTelemetry gRPC exporter and
``phoenix.otel.register()`` configured only by environment variables, against a receiver on a
free port (``grpc_endpoint``); status codes and partial success checked with a raw gRPC call."""

from __future__ import annotations

import gzip
from collections.abc import Sequence
from typing import Any

import grpc
import pytest
from django.db import OperationalError
from django.test import override_settings
from google.rpc.error_details_pb2 import RetryInfo
from google.rpc.status_pb2 import Status as RpcStatus
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExportResult

from tests.tracing.ingest.grpc_factories import RecordingExporter, export_raw
from tests.tracing.ingest.http_factories import (
    assert_agent_run_stored,
    assert_llm_request_stored,
    assert_nothing_written,
    llm_request,
    run_agent,
)
from tests.tracing.ingest.otlp_factories import START_NS, pb_span
from tracing.ingest.grpc import RETRY_INFO_KEY, grpc_server
from tracing.models import Project, Span

pytestmark = pytest.mark.usefixtures("transactional_db")


def refused(endpoint: str, body: bytes, metadata: Sequence[tuple[str, str]] = ()) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        export_raw(endpoint, body, metadata)
    return caught.value


# --- The real exporters -----------------------------------------------------------------------


def test_the_grpc_exporter_with_the_api_key_header(grpc_endpoint, api_key):
    exporter = RecordingExporter(endpoint=grpc_endpoint, headers={"api_key": api_key})
    provider = TracerProvider(
        resource=Resource.create({"service.name": "agent", "openinference.project.name": "grpc"})
    )
    provider.add_span_processor(BatchSpanProcessor(exporter))

    trace_id, _ = run_agent(provider)
    assert provider.force_flush(timeout_millis=15_000)
    provider.shutdown()

    assert exporter.results and set(exporter.results) == {SpanExportResult.SUCCESS}
    assert_agent_run_stored(trace_id, project="grpc")


def test_the_grpc_exporter_with_a_bearer_key_a_project_header_and_gzip(grpc_endpoint, api_key):
    exporter = RecordingExporter(
        endpoint=grpc_endpoint,
        headers={"authorization": f"Bearer {api_key}", "x-project-name": "from-header"},
        compression=grpc.Compression.Gzip,
    )
    provider = TracerProvider(
        resource=Resource.create({"openinference.project.name": "from-resource"})
    )
    provider.add_span_processor(SimpleSpanProcessor(exporter))

    trace_id, _ = run_agent(provider)
    provider.shutdown()

    assert exporter.results == [SpanExportResult.SUCCESS] * 3
    assert_agent_run_stored(trace_id, project="from-header")
    assert not Project.objects.filter(name="from-resource").exists()


def test_the_grpc_exporter_with_a_wrong_key_fails_and_writes_nothing(grpc_endpoint, api_key):
    exporter = RecordingExporter(endpoint=grpc_endpoint, headers={"api_key": "not-the-key"})
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))

    run_agent(provider)
    provider.shutdown()

    assert exporter.results == [SpanExportResult.FAILURE] * 3
    assert_nothing_written()


def test_phoenix_register_configured_only_by_environment_variables(
    grpc_endpoint, api_key, monkeypatch
):
    """With only PHOENIX_COLLECTOR_ENDPOINT (no path) Phoenix's ``register()`` exports over
    gRPC to PHOENIX_GRPC_PORT (4317 unless set), sending PHOENIX_API_KEY as a bearer token and
    PHOENIX_PROJECT_NAME as the resource's project."""
    from phoenix.otel import register

    host, port = grpc_endpoint.split(":")
    monkeypatch.setenv("PHOENIX_COLLECTOR_ENDPOINT", f"http://{host}:{port}")
    monkeypatch.setenv("PHOENIX_GRPC_PORT", port)
    monkeypatch.setenv("PHOENIX_API_KEY", api_key)
    monkeypatch.setenv("PHOENIX_PROJECT_NAME", "phoenix-grpc")
    provider = register(set_global_tracer_provider=False, verbose=False)
    assert "gRPC" in provider._tracing_details()

    trace_id, _ = run_agent(provider)
    provider.force_flush()
    provider.shutdown()

    assert_agent_run_stored(trace_id, project="phoenix-grpc")


def test_the_grpc_exporter_retries_a_busy_database_after_the_delay_it_is_given(
    grpc_endpoint, api_key, monkeypatch
):
    from tracing.ingest import grpc as grpc_otlp

    calls: list[bool] = []
    real = grpc_otlp.otlp_ingest

    def busy_once(**kwargs: Any) -> Any:
        calls.append(True)
        if len(calls) == 1:
            raise OperationalError("database is locked")
        return real(**kwargs)

    monkeypatch.setattr(grpc_otlp, "otlp_ingest", busy_once)
    exporter = RecordingExporter(endpoint=grpc_endpoint, headers={"api_key": api_key})
    provider = TracerProvider(resource=Resource.create({"openinference.project.name": "retry"}))
    provider.add_span_processor(BatchSpanProcessor(exporter))

    trace_id, _ = run_agent(provider)
    assert provider.force_flush(timeout_millis=15_000)
    provider.shutdown()

    assert len(calls) == 2
    assert exporter.results == [SpanExportResult.SUCCESS]
    assert_agent_run_stored(trace_id, project="retry")


# --- Status codes and partial success ---------------------------------------------------------


def test_a_valid_request_is_stored_and_answered_with_an_empty_response(grpc_endpoint, api_key):
    answer = export_raw(
        grpc_endpoint, llm_request().SerializeToString(), [("authorization", f"Bearer {api_key}")]
    )
    assert not ExportTraceServiceResponse.FromString(answer).HasField("partial_success")
    assert_llm_request_stored()


def test_invalid_spans_are_left_out_as_a_partial_success(grpc_endpoint, api_key):
    request = llm_request()
    spans = request.resource_spans[0].scope_spans[0].spans
    spans.append(pb_span(span_id=bytes(range(1, 9)), end_ns=START_NS - 10**9))
    spans.append(pb_span(span_id=bytes(range(2, 10)), trace_id=bytes(16)))

    answer = export_raw(grpc_endpoint, request.SerializeToString(), [("api_key", api_key)])

    partial = ExportTraceServiceResponse.FromString(answer).partial_success
    assert partial.rejected_spans == 2
    assert "0102030405060708" in partial.error_message
    assert "end_time is before start_time" in partial.error_message
    assert "trace_id must be 16 bytes, not all zero" in partial.error_message
    assert_llm_request_stored()
    assert Span.objects.count() == 2


@pytest.mark.parametrize(
    "metadata",
    [(), (("api_key", "wrong"),), (("authorization", "Basic Zm9vOmJhcg=="),)],
    ids=["none", "wrong", "basic"],
)
def test_no_valid_key_is_unauthenticated(grpc_endpoint, api_key, metadata):
    error = refused(grpc_endpoint, llm_request().SerializeToString(), metadata)
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "API key" in error.details()
    assert_nothing_written()


def test_a_message_that_cannot_be_read_is_an_invalid_argument(grpc_endpoint, api_key):
    error = refused(grpc_endpoint, b"\xff\xff\xff\xff garbage", [("api_key", api_key)])
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "malformed protobuf" in error.details()
    assert_nothing_written()


@pytest.mark.parametrize(
    ("message", "code", "delay"),
    [
        ("database is locked", grpc.StatusCode.RESOURCE_EXHAUSTED, 1),
        ("connection refused", grpc.StatusCode.UNAVAILABLE, 5),
    ],
    ids=["busy", "unreachable"],
)
def test_a_database_failure_asks_the_client_to_retry_later(
    grpc_endpoint, api_key, monkeypatch, message, code, delay
):
    def failing(**kwargs: Any) -> None:
        raise OperationalError(message)

    monkeypatch.setattr("tracing.ingest.grpc.otlp_ingest", failing)
    error = refused(grpc_endpoint, llm_request().SerializeToString(), [("api_key", api_key)])

    assert error.code() == code
    assert "retry later" in error.details()
    trailers = dict(error.trailing_metadata())
    assert RetryInfo.FromString(trailers[RETRY_INFO_KEY]).retry_delay.seconds == delay
    rich = RpcStatus.FromString(trailers["grpc-status-details-bin"])
    retry = RetryInfo()
    assert rich.details[0].Unpack(retry) and retry.retry_delay.seconds == delay


def test_a_message_over_the_size_limit_is_resource_exhausted(api_key):
    body = llm_request().SerializeToString()
    with override_settings(EVALHUB_MAX_BODY_SIZE=len(body) - 1):
        server = grpc_server(host="127.0.0.1", port=0, threads=1)
    server.start()
    try:
        error = refused(f"127.0.0.1:{server.port}", body, [("api_key", api_key)])
    finally:
        server.stop()
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert_nothing_written()


def test_a_gzip_bomb_is_cut_off_at_the_limit_once_inflated(api_key):
    request = llm_request()
    request.resource_spans[0].scope_spans[0].spans[0].attributes.add(
        key="padding"
    ).value.string_value = "\0" * (16 * 1024 * 1024)
    assert len(gzip.compress(request.SerializeToString())) < 64 * 1024
    with override_settings(EVALHUB_MAX_BODY_SIZE=1024 * 1024):
        server = grpc_server(host="127.0.0.1", port=0, threads=1)
    server.start()
    try:
        with pytest.raises(grpc.RpcError) as caught:
            export_raw(
                f"127.0.0.1:{server.port}",
                request.SerializeToString(),
                [("api_key", api_key)],
                compression=grpc.Compression.Gzip,
            )
    finally:
        server.stop()
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert_nothing_written()
