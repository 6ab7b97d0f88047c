"""Shared fixtures: API keys, authenticated clients, a live server that keeps every header."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any
from wsgiref import simple_server

import pytest
from django.core.servers import basehttp

from tests import factories

# Chromium through Playwright (browser, page, logged_in_page, …): for tests/browser and the
# security tests alike; the browser starts only for a test that asks for it.
pytest_plugins = ["tests.browser.fixtures"]


# Django's development handler drops headers with underscores (``api_key``); production servers
# are configured to keep them (gunicorn ``header_map``), so the test live server keeps them too.
def _get_environ_keeping_headers(self):  # type: ignore[no-untyped-def]
    return simple_server.WSGIRequestHandler.get_environ(self)


basehttp.WSGIRequestHandler.get_environ = _get_environ_keeping_headers


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):  # type: ignore[no-untyped-def]
    """In CI a skipped test is a failure: a missing service or browser must not hide a test."""
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("CI") and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, which is a failure here: {report.longrepr}"


@pytest.fixture(autouse=True)
def dispatched(monkeypatch) -> list[int]:  # type: ignore[no-untyped-def]
    """Runs are not sent to a broker from tests: their ids are collected here. Tests work a run
    by calling ``evalhub.tasks.engine.run_work``; the worker tests start a real worker, whose
    sweeper picks queued runs up."""
    sent: list[int] = []
    monkeypatch.setattr("evalhub.tasks.runs.run_dispatch", sent.append)
    return sent


@pytest.fixture(autouse=True)
def _sandbox_user(settings) -> None:  # type: ignore[no-untyped-def]
    """As root (CI), custom evaluator code drops to ``nobody``; as another user (a developer's
    checkout) it cannot switch, so it runs as that user (see README, isolation of code
    evaluators)."""
    if os.geteuid() != 0:
        settings.EVALHUB_SANDBOX_USER = "current"


@pytest.fixture
def celery_eager(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Tasks sent from this process run in it: for tests of custom code evaluators that are not
    about which process runs them (``tests/security/test_sandbox_escapes.py`` is)."""
    from evalhub.celery import app

    monkeypatch.setitem(app.conf, "task_always_eager", True)


@pytest.fixture
def api_key(db) -> str:  # type: ignore[no-untyped-def]
    return factories.api_key()


@pytest.fixture
def auth(api_key: str) -> dict[str, str]:
    """Headers for Django's test client: ``client.get(url, headers=auth)``."""
    return {"Authorization": f"Bearer {api_key}"}


@pytest.fixture
def grpc_endpoint(transactional_db, monkeypatch) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """``host:port`` of an OTLP/gRPC receiver (``tracing.ingest.grpc``) on a free port, in this
    process, storing from its own threads (no ingest processes) on the test database (committed
    data, hence ``transactional_db``), as ``live_server`` does for HTTP."""
    from django.db import connection

    from tracing.ingest.grpc import grpc_server

    # Each request closes its thread's connection when done, so none outlives the test.
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", 0)
    server = grpc_server(host="127.0.0.1", port=0, threads=4, processes=0)
    server.start()
    try:
        yield f"127.0.0.1:{server.port}"
    finally:
        server.stop()


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
