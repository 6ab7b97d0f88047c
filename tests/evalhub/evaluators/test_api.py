"""The /v1 provider and evaluator routes."""

import pytest
from django.contrib.auth import get_user_model

from evalhub.providers.models import Provider
from tests import factories
from tests.evalhub.fake_openai import VALID_KEY

pytestmark = pytest.mark.django_db


def test_the_api_key_is_write_only(client, auth, fake_openai):
    response = client.post(
        "/v1/providers",
        {
            "name": "fake",
            "kind": "compatible",
            "base_url": fake_openai.base_url,
            "api_key": VALID_KEY,
            "default_model": "judge-small",
        },
        content_type="application/json",
        headers=auth,
    )
    assert response.status_code == 201, response.content
    provider_id = response.json()["id"]
    for body in (
        response.content,
        client.get("/v1/providers", headers=auth).content,
        client.get(f"/v1/providers/{provider_id}", headers=auth).content,
    ):
        assert VALID_KEY.encode() not in body
    assert response.json()["has_api_key"] is True
    fake_openai.reply_with(content="pong")
    test = client.post(f"/v1/providers/{provider_id}/test", headers=auth).json()
    assert test["ok"] is True and test["answer"] == "pong"
    assert VALID_KEY not in Provider.objects.get(pk=provider_id).api_key_encrypted


def test_non_staff_users_cannot_manage_providers(client):
    user = get_user_model().objects.create_user("member", password="x")
    client.force_login(user)
    response = client.post(
        "/v1/providers",
        {"name": "p", "kind": "openai", "default_model": "m"},
        content_type="application/json",
    )
    assert response.status_code == 403
    assert response.json()["detail"] == (
        "member (member) may not do this: it needs an admin, or a key with admin "
        "scope (of an admin, or with no user)"
    )


def test_evaluator_from_template_versions_and_playground_run(client, auth, provider, fake_openai):
    created = client.post(
        "/v1/evaluators",
        {"template": "reference_match", "name": "ref"},
        content_type="application/json",
        headers=auth,
    )
    assert created.status_code == 201, created.content
    assert created.json()["annotation_name"] == "ref"
    config = created.json()["config"] | {"output_mode": "json"}
    patched = client.patch(
        "/v1/evaluators/ref", {"config": config}, content_type="application/json", headers=auth
    )
    assert patched.json()["version"] == 2
    versions = client.get("/v1/evaluators/ref/versions", headers=auth).json()["data"]
    assert [v["number"] for v in versions] == [2, 1]

    span = factories.trace(metadata={"reference": "30 days"})[0]
    fake_openai.answer("match", "same")
    run = client.post(
        "/v1/evaluators/ref/run",
        {"span_id": span.span_id},
        content_type="application/json",
        headers=auth,
    ).json()
    assert (run["label"], run["score"], run["version"]) == ("match", 1.0, 2)
    assert "30 days" in run["rendered_prompt"] and run["total_tokens"] > 0
    assert span.annotations.count() == 0  # the playground writes nothing


def test_invalid_definition_is_a_422_naming_the_field(client, auth):
    response = client.post(
        "/v1/evaluators",
        {"name": "x", "config": {"kind": "CODE", "check": "regex", "params": {}}},
        content_type="application/json",
        headers=auth,
    )
    assert response.status_code == 422
    assert response.json()["detail"] == "params.pattern: required for regex"


def test_patch_keeps_the_key_unless_a_new_one_is_given(client, auth, provider):
    from evalhub.providers.crypto import secret_decrypt

    url = f"/v1/providers/{provider.pk}"
    response = client.patch(
        url, {"default_model": "judge-large"}, content_type="application/json", headers=auth
    )
    assert response.status_code == 200 and response.json()["default_model"] == "judge-large"
    provider.refresh_from_db()
    assert secret_decrypt(provider.api_key_encrypted) == VALID_KEY
    response = client.patch(
        url,
        {"api_key": "sk-rotated-key-000000000001"},
        content_type="application/json",
        headers=auth,
    )
    assert b"sk-rotated-key" not in response.content
    assert response.json()["api_key_hint"] == "…0001"
    provider.refresh_from_db()
    assert secret_decrypt(provider.api_key_encrypted) == "sk-rotated-key-000000000001"
