"""The structured evaluator form, the playground's span picker and "Test an evaluator on this
span", through Django's test client."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model

from evalhub.evaluators.forms import EvaluatorForm
from evalhub.evaluators.models import Evaluator
from evalhub.evaluators.selectors import evaluator_version_latest
from evalhub.evaluators.services import evaluator_create, evaluator_create_from_template
from tests import factories
from tests.evalhub.evaluators.factories import browser_data

pytestmark = pytest.mark.django_db

JUDGE_POST = {
    "name": "answer-quality",
    "description": "Is the answer right?",
    "model": "judge-large",
    "temperature": "0.2",
    "max_tokens": "300",
    "system_prompt": "Be strict.",
    "template": "Question: {question}\r\nAnswer: {output}\r\nJudge it.",
    "output_mode": "json",
    "explanations": "on",
    "granularity": "span",
    "choices-label": ["good", "bad", ""],
    "choices-score": ["1", "0", ""],
    "variables-name": ["question", "output"],
    "variables-source": ["metadata.question", ""],
}


@pytest.fixture
def staff_client(client):
    user = get_user_model().objects.create_user("admin", password="x", is_staff=True)
    client.force_login(user)
    return client


def _edit_data(evaluator: Evaluator, **changes):
    """What the edit page posts when saved (with ``changes`` typed in)."""
    latest = evaluator_version_latest(evaluator=evaluator)
    shown = EvaluatorForm(
        config=latest.config,
        initial={"name": evaluator.name, "description": evaluator.description},
    )
    return dict(browser_data(shown, **changes).lists())


def test_new_judge_from_the_fields(staff_client, provider):
    page = staff_client.get("/evaluators/new/?kind=LLM").content.decode()
    assert 'name="choices-label"' in page and 'list="variable-sources"' in page
    assert '<option value="metadata.">metadata.&lt;key&gt;</option>' in page
    response = staff_client.post(
        "/evaluators/new/?kind=LLM", {**JUDGE_POST, "provider": str(provider.pk)}
    )
    assert response.status_code == 302 and response["Location"] == "/evaluators/answer-quality/"
    evaluator = Evaluator.objects.get(name="answer-quality")
    assert evaluator.description == "Is the answer right?"
    assert evaluator_version_latest(evaluator=evaluator).config == {
        "kind": "LLM",
        "template": "Question: {question}\nAnswer: {output}\nJudge it.",
        "system_prompt": "Be strict.",
        "choices": [{"label": "good", "score": 1.0}, {"label": "bad", "score": 0.0}],
        "explanations": True,
        "output_mode": "json",
        "model": "judge-large",
        "temperature": 0.2,
        "max_tokens": 300,
        "provider_id": provider.pk,
        "granularity": "span",
        "variables": {"question": "metadata.question"},
    }


def test_edit_shows_the_values_and_saves_a_version_only_when_changed(staff_client):
    staff_client.post("/evaluators/new/?kind=LLM", JUDGE_POST)
    evaluator = Evaluator.objects.get(name="answer-quality")
    page = staff_client.get("/evaluators/answer-quality/edit/").content.decode()
    assert 'name="choices-label" value="good"' in page
    assert 'name="choices-score" value="1.0"' in page
    assert 'name="variables-source" value="metadata.question"' in page
    assert re.search(r'<option value="json" selected>', page)
    assert 'value="judge-large"' in page

    response = staff_client.post("/evaluators/answer-quality/edit/", _edit_data(evaluator))
    assert response.status_code == 302
    assert evaluator.versions.count() == 1
    page = staff_client.get("/evaluators/answer-quality/").content.decode()
    assert "The definition did not change (still v1)" in page

    changed = _edit_data(evaluator, **{"choices-score": ["1", "0.25"]})
    staff_client.post("/evaluators/answer-quality/edit/", changed)
    latest = evaluator_version_latest(evaluator=evaluator)
    assert latest.number == 2
    assert latest.config["choices"][1] == {"label": "bad", "score": 0.25}
    assert "Saved as v2." in staff_client.get("/evaluators/answer-quality/").content.decode()


def test_new_code_evaluator_with_a_check_and_its_params(staff_client):
    page = staff_client.get("/evaluators/new/?kind=CODE").content.decode()
    assert 'data-check="regex" hidden' in page and 'name="param-regex-pattern"' in page
    response = staff_client.post(
        "/evaluators/new/?kind=CODE",
        {
            "name": "digits",
            "check": "regex",
            "granularity": "span",
            "param-regex-target": "output",
            "param-regex-pattern": r"^\d+$",
            "param-regex-ignore_case": "on",
            "param-exact_match-case_sensitive": "on",  # another check's: not read
            "variables-name": ["input", "output", "reference"],
            "variables-source": ["", "attributes.answer", ""],
        },
    )
    assert response.status_code == 302
    config = evaluator_version_latest(evaluator=Evaluator.objects.get(name="digits")).config
    assert config["check"] == "regex"
    assert config["params"] == {
        "pattern": r"^\d+$",
        "ignore_case": True,
        "full_match": False,
        "target": "output",
    }
    assert config["variables"] == {"output": "attributes.answer"}


@pytest.mark.parametrize(
    ("kind", "changes", "error_id", "message"),
    [
        (
            "LLM",
            {"choices-label": ["only", ""], "choices-score": ["1", ""]},
            "choices-error",
            "choices: List should have at least 2 items",
        ),
        (
            "LLM",
            {"variables-source": ["", ""]},
            "variables-error",
            "variable {question}: unknown source &#x27;question&#x27;",
        ),
        (
            "LLM",
            {"template": "No variables here."},
            "id_template-error",
            "template: has no {variables}; it would judge nothing",
        ),
        (
            "CODE",
            {"param-regex-pattern": "(unclosed"},
            "id_param-regex-pattern-error",
            "params.pattern: not a regular expression: missing ), unterminated subpattern",
        ),
        (
            "CODE",
            {"param-json_schema-schema": "{oops"},
            "id_param-json_schema-schema-error",
            "not valid JSON",
        ),
    ],
)
def test_bad_input_shows_the_error_next_to_the_field_and_writes_nothing(
    staff_client, kind, changes, error_id, message
):
    if kind == "LLM":
        data = {**JUDGE_POST, **changes}
    else:
        check = "regex" if "param-regex-pattern" in changes else "json_schema"
        data = {"name": "broken", "check": check, "param-regex-pattern": "a", **changes}
    response = staff_client.post(f"/evaluators/new/?kind={kind}", data)
    page = response.content.decode()
    assert response.status_code == 200
    error = re.search(rf'<p class="form-error" role="alert" id="{error_id}">(.*?)</p>', page)
    assert error is not None, page
    assert message in error.group(1)
    assert Evaluator.objects.count() == 0


def test_an_edited_json_is_saved_instead_of_the_fields(staff_client):
    evaluator = evaluator_create_from_template(key="toxicity", name="tox")
    config = evaluator_version_latest(evaluator=evaluator).config
    edited = '{"kind": "LLM", "template": "{output}", "choices": [{"label": "a"}, {"label": "b"}]}'
    staff_client.post("/evaluators/tox/edit/", _edit_data(evaluator, definition=edited, model="x"))
    latest = evaluator_version_latest(evaluator=evaluator)
    assert latest.number == 2 and latest.config["template"] == "{output}"
    assert latest.config["model"] == "" and config["model"] == ""


def test_custom_code_stays_staff_only(client):
    member = get_user_model().objects.create_user("member", password="x")
    client.force_login(member)
    page = client.get("/evaluators/new/?kind=custom").content.decode()
    assert '<option value="custom"' in page  # shown because it is the current check…
    response = client.post(
        "/evaluators/new/?kind=custom",
        {
            "name": "mine",
            "check": "custom",
            "code": "def evaluate(input, output, metadata, reference, span):\n    return 1\n",
        },
    )
    assert "only admins can create or change custom code evaluators" in (response.content.decode())
    assert Evaluator.objects.count() == 0


def test_variable_rows_follow_the_template(staff_client):
    response = staff_client.post(
        "/evaluators/form/variables/",
        {
            "template": "{question} then {documents} and <b>{question}</b>",
            "variables-name": ["question", "gone"],
            "variables-source": ["metadata.q", "input"],
        },
    )
    page = response.content.decode()
    assert page.lstrip().startswith('<table class="data rows" id="variable-rows">')
    assert re.findall(r'name="variables-name" value="([^"]*)"', page) == ["question", "documents"]
    assert 'value="metadata.q"' in page and 'placeholder="documents (by name)"' in page
    assert "gone" not in page


# --- the playground's span picker ------------------------------------------------------------


def test_span_picker_lists_the_newest_matching_spans(staff_client):
    evaluator_create_from_template(key="toxicity", name="tox")
    for _ in range(8):
        factories.trace(input_value="<i>question</i>")
    factories.trace(project="other")
    page = staff_client.get(
        "/evaluators/tox/spans/", {"project": "default", "filter": "span_kind = 'LLM'"}
    ).content.decode()
    assert page.lstrip().startswith('<div id="span-choices">')
    assert page.count('class="picker-span') == 8
    assert "The 8 newest matching spans." in page
    page = staff_client.get("/evaluators/tox/spans/", {"project": "default"}).content.decode()
    assert page.count('class="picker-span') == 20  # 24 spans: the newest 20
    assert "&lt;i&gt;question&lt;/i&gt;" in page and "<i>question</i>" not in page


def test_span_picker_shows_a_bad_filter_with_its_column(staff_client):
    evaluator_create_from_template(key="toxicity", name="tox")
    factories.trace()
    page = staff_client.get(
        "/evaluators/tox/spans/", {"project": "default", "filter": "span_knd = 'LLM'"}
    ).content.decode()
    assert "<strong>Column 1:</strong> unknown field &#x27;span_knd&#x27;" in page
    assert "picker-span" not in page
    page = staff_client.get("/evaluators/tox/spans/").content.decode()
    assert "Choose a project to list its newest spans." in page


def test_the_evaluator_page_preselects_the_span_from_the_query_string(staff_client):
    evaluator_create_from_template(key="toxicity", name="tox")
    spans = factories.trace()
    span = spans[2]
    page = staff_client.get(
        f"/evaluators/tox/?project=default&span={span.span_id}"
    ).content.decode()
    assert f'id="playground-span-id" class="mono" value="{span.span_id}"' in page
    assert '<option value="default" selected>default</option>' in page
    assert f'class="picker-span selected" data-span-id="{span.span_id}"' in page


# --- "Test an evaluator on this span" ----------------------------------------------------------


def test_span_pane_links_to_testing_an_evaluator_on_the_span(staff_client):
    spans = factories.trace()
    url = f"/projects/default/traces/{spans[0].trace.trace_id}/spans/{spans[1].span_id}/"
    page = staff_client.get(url).content.decode()
    assert (
        f'href="/evaluators/test/?project=default&amp;span={spans[1].span_id}">'
        "Test an evaluator on this span</a>" in page
    )
    assert (
        f'href="/tasks/new/?project=default&amp;span={spans[1].span_id}">Create task from this span'
        in page
    )


def test_test_on_span_lists_evaluators_linking_to_their_playground(staff_client):
    evaluator_create_from_template(key="toxicity", name="tox")
    evaluator_create(
        name="digits", config={"kind": "CODE", "check": "regex", "params": {"pattern": "\\d"}}
    )
    span = factories.trace()[1]
    page = staff_client.get(
        f"/evaluators/test/?project=default&span={span.span_id}"
    ).content.decode()
    assert f'href="/evaluators/tox/?project=default&amp;span={span.span_id}">tox</a>' in page
    assert f'href="/evaluators/digits/?project=default&amp;span={span.span_id}">digits</a>' in page
    assert span.name in page
    response = staff_client.get(
        f"/evaluators/test/?project=default&span={span.span_id}&q=dig",
        headers={"HX-Request": "true"},
    )
    results = response.content.decode()
    assert results.lstrip().startswith('<div id="results"')
    assert ">digits<" in results and ">tox<" not in results
