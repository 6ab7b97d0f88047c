"""Issue 11, point 4: API key scopes, expiry, last use, and who manages which keys — through
the REST API (``/v1/api_keys``), the services and the command line."""

from __future__ import annotations

import gzip
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from evalhub.identity.access import Principal
from evalhub.identity.models import ApiKey
from evalhub.identity.selectors import api_key_authenticate
from evalhub.identity.services import ApiKeyForbidden, ApiKeyInvalid, api_key_create
from tracing.models import Span

pytestmark = pytest.mark.django_db


def bearer(raw: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {raw}"}


@pytest.fixture
def people(django_user_model):
    return {
        "admin": django_user_model.objects.create_user("boss", is_staff=True),
        "member": django_user_model.objects.create_user("mia"),
        "other": django_user_model.objects.create_user("otto"),
    }


def _otlp_body() -> bytes:
    from tests.tracing.ingest.http_factories import llm_request  # the OTLP tests' builder

    message: ExportTraceServiceRequest = llm_request()
    return message.SerializeToString()


def test_an_ingest_key_sends_spans_and_does_nothing_else(client):
    raw = api_key_create(name="exporter", scope="ingest")[1]
    response = client.post(
        "/v1/traces",
        _otlp_body(),
        content_type="application/x-protobuf",
        headers=bearer(raw),
    )
    assert response.status_code == 200
    assert Span.objects.exists()
    for method, path in (("get", "/v1/projects"), ("get", "/v1/spans/x"), ("get", "/openapi.json")):
        refused = getattr(client, method)(path, headers=bearer(raw))
        assert refused.status_code in (403, 405), path
    refused = client.get("/v1/projects", headers=bearer(raw))
    assert refused.status_code == 403
    assert refused.json()["detail"] == (
        "the API key 'exporter' (ingest scope) may not do this: it needs a member or admin, "
        "or a key with read scope or more"
    )


def test_gzipped_json_otlp_with_an_ingest_key(client):
    raw = api_key_create(name="exporter", scope="ingest")[1]
    body = gzip.compress(b'{"resourceSpans": []}')
    response = client.post(
        "/v1/traces",
        body,
        content_type="application/json",
        headers={"api_key": raw, "Content-Encoding": "gzip"},
    )
    assert response.status_code == 200


def test_a_read_key_reads_but_cannot_write(client):
    raw = api_key_create(name="dash", scope="read")[1]
    assert client.get("/v1/projects", headers=bearer(raw)).status_code == 200
    response = client.post(
        "/v1/projects", {"name": "x"}, content_type="application/json", headers=bearer(raw)
    )
    assert response.status_code == 403
    assert "write scope" in response.json()["detail"]


def test_an_expired_key_is_refused_with_a_clear_401(client):
    key, raw = api_key_create(
        name="temp", scope="read", expires_at=timezone.now() + timedelta(hours=1)
    )
    assert client.get("/v1/projects", headers=bearer(raw)).status_code == 200
    ApiKey.objects.filter(pk=key.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    response = client.get("/v1/projects", headers=bearer(raw))
    assert response.status_code == 401
    assert response.json()["detail"].startswith("the API key 'temp' expired at ")
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_revoked_key_and_a_deactivated_users_key_are_refused(client, people):
    key, raw = api_key_create(name="gone", scope="read", user=people["member"])
    people["member"].is_active = False
    people["member"].save()
    response = client.get("/v1/projects", headers=bearer(raw))
    assert response.status_code == 401
    assert "deactivated" in response.json()["detail"]
    ApiKey.objects.filter(pk=key.pk).update(revoked_at=timezone.now())
    assert client.get("/v1/projects", headers=bearer(raw)).status_code == 401


def test_a_key_beside_a_session_cookie_is_what_counts(client, people):
    client.force_login(people["admin"])
    raw = api_key_create(name="dash", scope="read")[1]
    response = client.delete("/v1/projects/whatever", headers=bearer(raw))
    assert response.status_code == 403  # the admin's cookie does not lend the key its power
    bad = client.get("/v1/projects", headers=bearer("ehk_not-a-key"))
    assert bad.status_code == 401


def test_last_used_is_written_at_most_once_a_minute(client):
    key, raw = api_key_create(name="dash", scope="read")
    assert key.last_used_at is None
    client.get("/v1/projects", headers=bearer(raw))
    key.refresh_from_db()
    first = key.last_used_at
    assert first is not None
    client.get("/v1/projects", headers=bearer(raw))
    key.refresh_from_db()
    assert key.last_used_at == first  # within the minute: not written again
    ApiKey.objects.filter(pk=key.pk).update(last_used_at=first - timedelta(minutes=2))
    api_key_authenticate(raw)
    key.refresh_from_db()
    assert key.last_used_at > first - timedelta(minutes=2)


# --- who makes which keys ------------------------------------------------------------------------


def test_members_make_their_own_keys_up_to_write(people):
    member = Principal(user=people["member"])
    key, _raw = api_key_create(name="mine", scope="write", user=people["member"], actor=member)
    assert key.created_by == people["member"]
    with pytest.raises(ApiKeyInvalid, match="scope: a member may have keys up to write scope"):
        api_key_create(name="more", scope="admin", user=people["member"], actor=member)
    with pytest.raises(ApiKeyForbidden):
        api_key_create(name="theirs", scope="read", user=people["other"], actor=member)
    with pytest.raises(ApiKeyForbidden):
        api_key_create(name="service", scope="ingest", user=None, actor=member)


def test_only_admins_make_user_less_admin_keys(people):
    admin = Principal(user=people["admin"])
    key, _ = api_key_create(name="ops", scope="admin", actor=admin)
    assert key.user is None and key.scope == "admin"
    with pytest.raises(ApiKeyInvalid, match="expires_at: must be in the future"):
        api_key_create(
            name="x", scope="read", actor=admin, expires_at=timezone.now() - timedelta(days=1)
        )


def test_rest_api_keys_for_a_member_session(client, people):
    client.force_login(people["member"])
    created = client.post(
        "/v1/api_keys",
        {"name": "notebook", "scope": "read", "expires_at": "2099-01-01T00:00:00Z"},
        content_type="application/json",
    )
    assert created.status_code == 201
    body = created.json()
    assert body["key"].startswith("ehk_") and body["scope"] == "read"
    assert body["user"] == "mia" and body["status"] == "active"
    assert body["expires_at"].startswith("2099-01-01")
    assert client.get("/v1/projects", headers=bearer(body["key"])).status_code == 200

    others = api_key_create(name="otto's", scope="read", user=people["other"])[0]
    listed = client.get("/v1/api_keys").json()["data"]
    assert [k["name"] for k in listed] == ["notebook"]
    assert "key" not in listed[0]
    assert client.get(f"/v1/api_keys/{others.pk}").status_code == 404
    assert client.delete(f"/v1/api_keys/{others.pk}").status_code == 404

    too_much = client.post(
        "/v1/api_keys", {"name": "x", "scope": "admin"}, content_type="application/json"
    )
    assert too_much.status_code == 422
    assert too_much.json()["detail"] == "scope: a member may have keys up to write scope"
    for_other = client.post(
        "/v1/api_keys",
        {"name": "x", "scope": "read", "user": "otto"},
        content_type="application/json",
    )
    assert for_other.status_code == 403

    assert client.delete(f"/v1/api_keys/{body['id']}").status_code == 204
    assert client.get("/v1/projects", headers=bearer(body["key"])).status_code == 401
    assert client.get(f"/v1/api_keys/{body['id']}").json()["status"] == "revoked"


def test_keys_do_not_mint_keys_unless_admin_scope(client, people):
    write = api_key_create(name="w", scope="write", user=people["admin"])[1]
    response = client.post(
        "/v1/api_keys", {"name": "x"}, content_type="application/json", headers=bearer(write)
    )
    assert response.status_code == 403
    admin = api_key_create(name="a", scope="admin")[1]
    made = client.post(
        "/v1/api_keys",
        {"name": "exporter", "user": "mia"},
        content_type="application/json",
        headers=bearer(admin),
    )
    assert made.status_code == 201
    assert made.json()["scope"] == "ingest"  # the default: keys are for exporters
    assert made.json()["user"] == "mia"


def test_create_api_key_command_takes_a_scope_and_an_expiry(people):
    out = StringIO()
    call_command(
        "create_api_key", "--name", "ci", "--scope", "read", "--expires", "2099-02-03", stdout=out
    )
    raw = out.getvalue().strip()
    key = api_key_authenticate(raw)
    assert key.scope == "read" and key.user is None
    assert key.expires_at.isoformat().startswith("2099-02-03T00:00:00")
    default = StringIO()
    call_command("create_api_key", "--name", "exporter", stdout=default)
    assert api_key_authenticate(default.getvalue().strip()).scope == "ingest"
