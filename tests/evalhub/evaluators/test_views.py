"""Evaluator hub pages, through Django's test client."""

import pytest
from django.contrib.auth import get_user_model

from evalhub.evaluators.library import template_get
from evalhub.evaluators.models import Evaluator
from evalhub.evaluators.services import evaluator_create_from_template
from evalhub.providers.models import Provider
from tests import factories
from tests.evalhub.evaluators.factories import browser_data
from tests.evalhub.fake_openai import VALID_KEY

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    user = get_user_model().objects.create_user("admin", password="x", is_staff=True)
    client.force_login(user)
    return client


def test_navigation_shows_evaluators_and_settings(staff_client):
    page = staff_client.get("/evaluators/").content.decode()
    assert '<a href="/evaluators/" class="active" aria-current="page">Evaluators</a>' in page
    assert '<a href="/settings/providers/">Settings</a>' in page


def test_template_library_use_opens_the_form_filled_from_the_template(staff_client, provider):
    page = staff_client.get("/evaluators/templates/").content.decode()
    assert page.count('href="/evaluators/new/?template=') >= 12
    assert staff_client.post("/evaluators/templates/", {"key": "toxicity"}).status_code == 405
    form = staff_client.get("/evaluators/new/?template=toxicity")
    html = form.content.decode()
    assert form.status_code == 200 and not Evaluator.objects.exists()  # nothing created yet
    assert 'name="name" value="toxicity"' in html and "From the template" in html
    assert "toxic" in html and 'name="provider"' in html
    assert staff_client.get("/evaluators/new/?template=nope").status_code == 404
    # The user names it and picks the provider and model, then creates it.
    shown = form.context["form"]
    data = dict(
        browser_data(shown, name="tox", provider=str(provider.pk), model="judge-large").lists()
    )
    response = staff_client.post("/evaluators/new/?template=toxicity", data)
    assert response.status_code == 302 and response["Location"] == "/evaluators/tox/"
    evaluator = Evaluator.objects.get(name="tox")
    assert evaluator.template_key == "toxicity"
    config = evaluator.versions.get().config
    assert (config["provider_id"], config["model"]) == (provider.pk, "judge-large")
    assert config["template"] == template_get("toxicity").template


def test_edit_with_an_invalid_definition_shows_the_reason(staff_client):
    evaluator_create_from_template(key="toxicity", name="tox")
    response = staff_client.post(
        "/evaluators/tox/edit/",
        {"description": "", "definition": '{"kind": "LLM", "template": "{x}", "choices": []}'},
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert "choices: List should have at least 2 items" in page


def test_playground_runs_on_a_span_and_writes_nothing(staff_client, provider, fake_openai):
    evaluator_create_from_template(key="toxicity", name="tox")
    span = factories.trace(output_value="You <b>idiot</b>")[0]
    fake_openai.answer("toxic", "insults the user")
    response = staff_client.post(
        "/evaluators/tox/playground/", {"span_id": span.span_id, "action": "run"}
    )
    page = response.content.decode()
    assert "toxic" in page and "insults the user" in page
    assert "You &lt;b&gt;idiot&lt;/b&gt;" in page  # the rendered prompt, escaped
    assert "Rendered prompt" in page and "Raw response" in page
    assert span.annotations.count() == 0


def test_playground_preview_names_a_missing_variable(staff_client):
    evaluator_create_from_template(key="reference_match", name="ref")
    span = factories.trace()[0]
    page = staff_client.post(
        "/evaluators/ref/playground/", {"span_id": span.span_id, "action": "preview"}
    ).content.decode()
    assert "missing variable {reference}: reference is missing on span" in page


def test_providers_page_never_shows_the_key_and_tests_the_connection(staff_client, fake_openai):
    response = staff_client.post(
        "/settings/providers/",
        {
            "name": "fake",
            "kind": "compatible",
            "base_url": fake_openai.base_url,
            "api_key": VALID_KEY,
            "default_model": "judge-small",
            "max_concurrency": 2,
            "requests_per_minute": 0,
            "timeout_seconds": 5,
        },
    )
    assert response.status_code == 302
    provider = Provider.objects.get(name="fake")
    for url in ("/settings/providers/", f"/settings/providers/{provider.pk}/"):
        assert VALID_KEY not in staff_client.get(url).content.decode()
    fake_openai.reply_with(content="pong")
    page = staff_client.post(f"/settings/providers/{provider.pk}/test/").content.decode()
    assert "judge-small answered “pong”" in page


def test_providers_page_is_for_staff_only(client):
    user = get_user_model().objects.create_user("member", password="x")
    client.force_login(user)
    response = client.get("/settings/providers/")
    assert response.status_code == 403
    assert "it needs an admin" in response.content.decode()


def test_list_search_swaps_only_the_results(staff_client):
    evaluator_create_from_template(key="toxicity", name="tox")
    evaluator_create_from_template(key="sql_generation", name="sql")
    response = staff_client.get("/evaluators/?q=sql", headers={"HX-Request": "true"})
    page = response.content.decode()
    assert page.lstrip().startswith('<div id="results"')
    assert ">sql<" in page and ">tox<" not in page
