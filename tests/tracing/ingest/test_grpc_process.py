"""``manage.py grpc_ingest``: the OTLP/gRPC receiver as ``./dev run`` and production start it,
in a child process on the test database, fed by the real OpenTelemetry gRPC exporter."""

from __future__ import annotations

import os
import signal
import socket

import pytest
from django.core.management import CommandError, call_command
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult

from tests.servers import GrpcIngest
from tests.tracing.ingest.grpc_factories import RecordingExporter
from tests.tracing.ingest.http_factories import assert_agent_run_stored, run_agent
from tracing.models import Trace

pytestmark = pytest.mark.usefixtures("transactional_db")


def send_agent_run(endpoint: str, api_key: str, project: str) -> tuple[int, list[object]]:
    exporter = RecordingExporter(endpoint=endpoint, headers={"api_key": api_key})
    provider = TracerProvider(resource=Resource.create({"openinference.project.name": project}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace_id, _ = run_agent(provider)
    provider.shutdown()
    return trace_id, list(exporter.results)


def test_the_command_serves_exporters_and_stops_on_sigterm(tmp_path, api_key):
    server = GrpcIngest(tmp_path).start()
    try:
        trace_id, results = send_agent_run(server.endpoint, api_key, "command")
    finally:
        code = server.stop()
    assert results == [SpanExportResult.SUCCESS] * 3, server.output()
    assert_agent_run_stored(trace_id, project="command")
    assert code == 0, server.output()
    assert "stopping: finishing the requests in flight" in server.output()


def test_an_ingest_process_that_dies_is_replaced_and_the_export_sent_again(tmp_path, api_key):
    """Ingest processes behind one connection (started as the work needs them, up to two); one
    is killed: the next request fails with UNAVAILABLE, the exporter sends it again, new
    processes store it."""
    server = GrpcIngest(tmp_path, processes=2).start()
    try:
        first = send_agent_run(server.endpoint, api_key, "p1")
        server.wait_until(server.ingest_processes)
        os.kill(server.ingest_processes()[0], signal.SIGKILL)
        second = send_agent_run(server.endpoint, api_key, "p2")
    finally:
        code = server.stop()
    for project, (trace_id, results) in (("p1", first), ("p2", second)):
        assert results == [SpanExportResult.SUCCESS] * 3, server.output()
        trace = Trace.objects.get(trace_id=f"{trace_id:032x}")
        assert (trace.project.name, trace.span_count, trace.error_count) == (project, 3, 1)
    assert "an OTLP/gRPC ingest process died; starting new ones" in server.output()
    assert code == 0, server.output()


def test_a_port_in_use_is_an_error_not_a_second_server():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(CommandError, match=f"cannot serve OTLP/gRPC on 127.0.0.1:{port}"):
            call_command("grpc_ingest", port=port, threads=1)
