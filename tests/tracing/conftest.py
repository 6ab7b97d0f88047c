"""Fixtures for the Phoenix-compatible tracing API tests."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from tests import factories

_ids = itertools.count(1)


def phoenix_span(
    *,
    trace_id: str | None = None,
    span_id: str | None = None,
    parent_id: str | None = None,
    name: str = "span",
    span_kind: str = "CHAIN",
    start: datetime | None = None,
    latency_ms: float = 100.0,
    status_code: str = "OK",
    attributes: dict[str, Any] | None = None,
    events: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A span in Phoenix's REST shape, as the Phoenix client sends it."""
    start = start or factories.BASE_TIME
    n = next(_ids)
    span: dict[str, Any] = {
        "name": name,
        "context": {
            "trace_id": trace_id or f"{0xABC000 + n:032x}",
            "span_id": span_id or f"{0xDEF000 + n:016x}",
        },
        "span_kind": span_kind,
        "start_time": start.isoformat(),
        "end_time": (start + timedelta(milliseconds=latency_ms)).isoformat(),
        "status_code": status_code,
        "status_message": "",
        "attributes": attributes if attributes is not None else {"input.value": "question"},
        "events": events or [],
    }
    if parent_id is not None:
        span["parent_id"] = parent_id
    return span


@pytest.fixture
def make_span() -> Callable[..., dict[str, Any]]:
    return phoenix_span


@pytest.fixture
def grpc_endpoint(transactional_db, monkeypatch) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """``host:port`` of an OTLP/gRPC receiver (``tracing.grpc_otlp``) on a free port, in this
    process, serving from its own threads on the test database (committed data, hence
    ``transactional_db``), as ``live_server`` does for HTTP."""
    from django.db import connection

    from tracing.grpc_otlp import grpc_server

    # Each request closes its thread's connection when done, so none outlives the test.
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", 0)
    server, port = grpc_server(host="127.0.0.1", port=0, threads=4)
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(grace=None).wait()


@pytest.fixture(scope="session")
def gunicorn_server(django_db_setup, tmp_path_factory) -> Iterator[Any]:  # type: ignore[no-untyped-def]
    """EvalHub under gunicorn with its production config (gthread workers), in a child process
    on the test database (PostgreSQL), for one session: one worker of 4 threads, a 1 MiB body
    limit and a 2 s stalled-body timeout, so the limits can be reached quickly. Tests that use
    it take ``transactional_db`` for the data they send to be visible."""
    from tests.servers import Gunicorn, needs_postgresql

    needs_postgresql()
    server = Gunicorn(
        tmp_path_factory.mktemp("gunicorn"),
        WEB_THREADS="4",
        EVALHUB_MAX_BODY_SIZE="1M",
        WEB_BODY_TIMEOUT="2",
    ).start()
    yield server
    server.stop()
