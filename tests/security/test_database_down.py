"""When the database cannot be reached, ingest and health answer 503 with ``Retry-After`` (never
a 500, which exporters drop), and the real exporters retry until the database is back.

EvalHub's servers run in child processes (gunicorn with its production config, the OTLP/gRPC
receiver) with a ``DATABASE_URL`` that points at a TCP proxy to the test database; while the
proxy is down nothing listens on its port, as when PostgreSQL is stopped or unreachable.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
import requests
from google.rpc.code_pb2 import UNAVAILABLE
from google.rpc.error_details_pb2 import RetryInfo
from google.rpc.status_pb2 import Status as RpcStatus
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult

from tests.servers import GrpcIngest, Gunicorn, database_url, free_port, needs_postgresql
from tests.tracing.ingest.grpc_factories import export_raw
from tests.tracing.ingest.http_factories import (
    RecordingExporter,
    assert_agent_run_stored,
    llm_request,
    run_agent,
)
from tracing.ingest.grpc import RETRY_INFO_KEY

pytestmark = pytest.mark.usefixtures("transactional_db")


class PostgresProxy:
    """Forwards ``port`` to the test database while up; while down, nothing listens there."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.listener: socket.socket | None = None
        self.sockets: list[socket.socket] = []

    def up(self) -> None:
        from django.conf import settings

        db = settings.DATABASES["default"]
        target = (db["HOST"] or "127.0.0.1", int(db["PORT"] or 5432))
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen()
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener, target), daemon=True).start()

    def _accept(self, listener: socket.socket, target: tuple[str, int]) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed
            upstream = socket.create_connection(target)
            self.sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        if self.listener is not None:
            self.listener.close()
        for sock in self.sockets:
            sock.close()


@pytest.fixture
def proxy() -> Iterator[PostgresProxy]:
    needs_postgresql()
    proxy = PostgresProxy(free_port())
    yield proxy
    proxy.close()


@pytest.fixture
def web(tmp_path, proxy) -> Iterator[Gunicorn]:
    server = Gunicorn(tmp_path, DATABASE_URL=database_url(port=proxy.port)).start()
    yield server
    server.stop()


def access_log_count(server: Any, needle: str) -> int:
    return server.output().count(needle)


def test_health_and_the_api_answer_503_json_while_the_database_is_down(web, api_key):
    health = requests.get(f"{web.url}/healthz", timeout=30)
    assert health.status_code == 503
    assert health.headers["Retry-After"] == "5"
    assert health.json()["detail"] == "the database is unavailable; retry later"

    listing = requests.get(
        f"{web.url}/v1/projects", headers={"Authorization": f"Bearer {api_key}"}, timeout=30
    )
    assert listing.status_code == 503
    assert listing.headers["Retry-After"] == "5"
    assert "unavailable" in listing.json()["detail"]


@pytest.mark.parametrize("as_json", [False, True], ids=["protobuf", "json"])
def test_otlp_answers_503_whichever_part_of_the_request_meets_the_database(web, api_key, as_json):
    """The key lookups of the role middleware and of the view both fail here."""
    headers = {"api_key": api_key}
    if as_json:
        from tests.tracing.ingest.otlp_factories import otlp_json

        response = requests.post(
            f"{web.url}/v1/traces",
            json=otlp_json(llm_request()),
            headers=headers,
            timeout=30,
        )
        assert response.headers["Content-Type"] == "application/json"
        assert "unavailable" in response.json()["detail"]
    else:
        response = requests.post(
            f"{web.url}/v1/traces",
            data=llm_request().SerializeToString(),
            headers={**headers, "Content-Type": "application/x-protobuf"},
            timeout=30,
        )
        status = RpcStatus.FromString(response.content)
        assert status.code == UNAVAILABLE
        retry = RetryInfo()
        assert status.details[0].Unpack(retry) and retry.retry_delay.seconds == 5
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"


def test_the_http_exporter_retries_until_the_database_is_back(web, proxy, api_key):
    exporter = RecordingExporter(
        endpoint=f"{web.url}/v1/traces", headers={"api_key": api_key}, timeout=60
    )
    provider = TracerProvider(resource=Resource.create({"openinference.project.name": "back"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    runs: list[tuple[int, str]] = []

    sending = threading.Thread(target=lambda: runs.append(run_agent(provider)))
    sending.start()
    web.wait_until(lambda: access_log_count(web, '"POST /v1/traces HTTP/1.1" 503') >= 1)
    proxy.up()
    sending.join(timeout=120)
    provider.shutdown()

    assert exporter.results == [SpanExportResult.SUCCESS] * 3
    [(trace_id, _)] = runs
    assert_agent_run_stored(trace_id, project="back")


def test_grpc_is_unavailable_with_retry_info_then_the_exporter_gets_through(
    tmp_path, proxy, api_key
):
    server = GrpcIngest(tmp_path, DATABASE_URL=database_url(port=proxy.port)).start()
    try:
        with pytest.raises(grpc.RpcError) as caught:
            export_raw(server.endpoint, llm_request().SerializeToString(), [("api_key", api_key)])
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        trailers = dict(caught.value.trailing_metadata())
        assert RetryInfo.FromString(trailers[RETRY_INFO_KEY]).retry_delay.seconds == 5

        exporter = GrpcExporter(
            endpoint=server.endpoint, insecure=True, headers={"api_key": api_key}, timeout=60
        )
        provider = TracerProvider(
            resource=Resource.create({"openinference.project.name": "grpc-back"})
        )
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        runs: list[tuple[int, str]] = []
        sending = threading.Thread(target=lambda: runs.append(run_agent(provider)))
        sending.start()
        server.wait_until(lambda: server.output().count("database failure") >= 2)
        proxy.up()
        sending.join(timeout=120)
        provider.shutdown()
    finally:
        server.stop()
    [(trace_id, _)] = runs
    assert_agent_run_stored(trace_id, project="grpc-back")
