"""``evalhub.core.database``: a database failure anywhere in an API or health request is a 503 with
``Retry-After`` (JSON, or a ``google.rpc.Status`` for protobuf), not a 500. The end-to-end
version, with PostgreSQL out of reach, is tests/security/test_database_down.py."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import InterfaceError, OperationalError
from google.rpc.status_pb2 import Status as RpcStatus

from tests.tracing.ingest.http_factories import llm_request

pytestmark = pytest.mark.django_db


@pytest.fixture
def client(client: Any) -> Any:
    """As a server answers: Django's test client would re-raise the exception it handled."""
    client.raise_request_exception = False
    return client


def fail_with(exc: Exception) -> Any:
    def failing(*args: Any, **kwargs: Any) -> None:
        raise exc

    return failing


@pytest.mark.parametrize(
    ("exc", "detail", "retry_after"),
    [
        (OperationalError("connection refused"), "the database is unavailable; retry later", "5"),
        (
            InterfaceError("connection already closed"),
            "the database is unavailable; retry later",
            "5",
        ),
        (OperationalError("database is locked"), "the database is busy; retry later", "1"),
    ],
)
def test_a_failure_in_a_middleware_before_the_view(
    client, api_key, monkeypatch, exc, detail, retry_after
):
    """The access middleware looks the key up before the ingest view runs."""
    monkeypatch.setattr("evalhub.identity.auth.api_key_check", fail_with(exc))
    response = client.post(
        "/v1/traces",
        data=llm_request().SerializeToString(),
        content_type="application/x-protobuf",
        headers={"api_key": api_key},
    )
    assert response.status_code == 503
    assert response["Retry-After"] == retry_after
    assert RpcStatus.FromString(response.content).message == detail

    response = client.get("/v1/projects", headers={"api_key": api_key})
    assert response.status_code == 503
    assert response.json()["detail"] == detail


def test_a_failure_in_an_api_view(client, auth, monkeypatch):
    monkeypatch.setattr(
        "tracing.api.spans.selectors.project_list", fail_with(OperationalError("server closed"))
    )
    response = client.get("/v1/projects", headers=auth)
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response.json()["detail"] == "the database is unavailable; retry later"


def test_health_answers_503_json(client, monkeypatch):
    monkeypatch.setattr(
        "django.db.backends.utils.CursorWrapper.execute", fail_with(OperationalError("gone"))
    )
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    assert response.json()["detail"] == "the database is unavailable; retry later"


def test_other_errors_stay_500(client, auth, monkeypatch):
    monkeypatch.setattr("tracing.api.spans.selectors.project_list", fail_with(ValueError("a bug")))
    assert client.get("/v1/projects", headers=auth).status_code == 500
