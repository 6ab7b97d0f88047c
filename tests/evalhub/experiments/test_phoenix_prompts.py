"""Prompts with the real Phoenix client: create versions, get latest / by id / by tag, tag,
list versions; bad input is a 400 naming the field."""

from __future__ import annotations

import pytest
from phoenix.client import Client
from phoenix.client.types import PromptVersion

from evalhub.experiments.models import Prompt
from evalhub.experiments.models import PromptVersion as StoredVersion
from evalhub.experiments.prompts import prompt_render, template_variables

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def px(live_server, api_key) -> Client:
    return Client(base_url=live_server.url, api_key=api_key)


def test_versions_tags_and_rendering(px, client, auth):
    first = px.prompts.create(
        name="answerer",
        prompt_description="answers questions",
        version=PromptVersion(
            [
                {"role": "system", "content": "You answer briefly."},
                {"role": "user", "content": "Q: {{question}} (topic {{ topic }})"},
            ],
            model_name="gpt-4o-mini",
            model_provider="OPENAI",
        ),
    )
    second = px.prompts.create(
        name="answerer",
        version=PromptVersion(
            [{"role": "user", "content": "Answer: {{question}}"}], model_name="gpt-4o"
        ),
    )
    assert first.id != second.id
    assert px.prompts.get(prompt_identifier="answerer").id == second.id
    assert px.prompts.get(prompt_version_id=first.id).id == first.id
    px.prompts.tags.create(prompt_version_id=first.id, name="production")
    assert px.prompts.get(prompt_identifier="answerer", tag="production").id == first.id
    assert [t["name"] for t in px.prompts.tags.list(prompt_version_id=first.id)] == ["production"]
    # The client formats the version it read back.
    formatted = px.prompts.get(prompt_version_id=first.id).format(
        variables={"question": "2+2?", "topic": "math"}
    )
    assert formatted.messages[-1]["content"] == "Q: 2+2? (topic math)"
    versions = client.get("/v1/prompts/answerer/versions", headers=auth).json()["data"]
    assert [v["id"] for v in versions] == [second.id, first.id]

    stored = StoredVersion.objects.get(pk=int(first.id))
    assert template_variables(stored) == ["question", "topic"]
    assert prompt_render(stored, {"question": "why?", "topic": "x"})[1] == {
        "role": "user",
        "content": "Q: why? (topic x)",
    }
    assert Prompt.objects.get().description == "answers questions"
    with pytest.raises(ValueError, match="Prompt not found"):
        px.prompts.get(prompt_identifier="answerer", tag="nope")


def test_prompts_and_versions_are_listed_a_page_at_a_time(client, auth):
    def create(name, model):
        body = {
            "prompt": {"name": name},
            "version": {
                "model_name": model,
                "template": {"type": "chat", "messages": [{"role": "user", "content": "x"}]},
            },
        }
        response = client.post("/v1/prompts", body, content_type="application/json", headers=auth)
        return response.json()["data"]["id"]

    versions = [create("b-prompt", f"m{n}") for n in range(3)]
    create("a-prompt", "m")
    create("c-prompt", "m")

    def pages(path):
        found, cursor = [], None
        while True:
            params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
            body = client.get(path, params, headers=auth).json()
            assert len(body["data"]) <= 2
            found += body["data"]
            cursor = body["next_cursor"]
            if cursor is None:
                return found

    assert [p["name"] for p in pages("/v1/prompts")] == ["a-prompt", "b-prompt", "c-prompt"]
    listed = pages("/v1/prompts/b-prompt/versions")
    assert [v["id"] for v in listed] == versions[::-1]
    bad = client.get("/v1/prompts", {"cursor": "%%%"}, headers=auth)
    assert bad.status_code == 422


def test_bad_prompt_versions_are_refused(client, auth):
    def post(version):
        return client.post(
            "/v1/prompts",
            {"prompt": {"name": "p"}, "version": version},
            content_type="application/json",
            headers=auth,
        )

    good = {
        "model_name": "m",
        "template": {"type": "chat", "messages": [{"role": "user", "content": "x"}]},
    }
    cases = [
        ({**good, "template_type": "XML"}, "version.template_type: must be one of CHAT, STR"),
        ({**good, "template": {"type": "chat", "messages": []}}, "version.template: a CHAT"),
        (
            {**good, "template": {"type": "chat", "messages": [{"role": "boss", "content": "x"}]}},
            "version.template.messages[0]: needs a role",
        ),
        ({**good, "model_name": ""}, "version.model_name: must not be empty"),
    ]
    for version, detail in cases:
        response = post(version)
        assert response.status_code == 400
        assert response.json()["detail"].startswith(detail)
    assert not Prompt.objects.exists()
