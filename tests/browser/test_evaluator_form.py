"""The evaluator form and the playground's span picker in Chromium: a judge built from fields
(choice rows, variable rows refreshed as the template is typed), edited with a new version
only when changed; a code check with its parameters; a span picked from a span's pane."""

from __future__ import annotations

import re

import pytest

from evalhub.evaluators.models import Evaluator
from evalhub.evaluators.selectors import evaluator_version_latest
from evalhub.evaluators.services import evaluator_create_from_template
from tests import factories
from tests.evalhub.fake_openai import fake_openai  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


def _choice(page, index):  # type: ignore[no-untyped-def]
    return page.locator("#choice-rows .choice-row").nth(index)


def test_judge_created_and_edited_through_the_fields(logged_in_page, tmp_path):
    page = logged_in_page
    page.goto("/evaluators/")
    page.get_by_role("link", name="New LLM judge").click()
    page.wait_for_url(re.compile(r"/evaluators/new/"))
    page.get_by_label("Name").fill("answer-quality")

    # The variable rows follow the template as it is typed.
    page.get_by_label("Prompt template").fill("Question: {question}\nAnswer: {output}\nJudge it.")
    rows = page.locator("#variable-rows .variable-row")
    page.locator('#variable-rows .variable-row[data-variable="question"]').wait_for()
    assert rows.count() == 2
    assert page.get_by_label("Source of output").get_attribute("placeholder") == "output (by name)"
    page.get_by_label("Source of question").fill("metadata.question")

    # Choices as rows: the starter's go, two of ours come.
    while page.locator("#choice-rows .choice-row").count() > 1:
        _choice(page, 0).get_by_role("button", name="Remove choice").click()
    _choice(page, 0).get_by_label("Choice label").fill("good")
    _choice(page, 0).get_by_label("Choice score").fill("1")
    page.get_by_role("button", name="Add choice").click()
    _choice(page, 1).get_by_label("Choice label").fill("bad")
    _choice(page, 1).get_by_label("Choice score").fill("0")
    page.get_by_role("button", name="Add choice").click()
    _choice(page, 2).get_by_label("Choice label").fill("unsure")
    _choice(page, 2).get_by_role("button", name="Remove choice").click()
    page.get_by_label("Output", exact=True).select_option("json")
    page.get_by_role("button", name="Create").click()

    page.wait_for_url(re.compile(r"/evaluators/answer-quality/$"))
    page.get_by_text("Created answer-quality.").wait_for()
    evaluator = Evaluator.objects.get(name="answer-quality")
    config = evaluator_version_latest(evaluator=evaluator).config
    assert config["choices"] == [{"label": "good", "score": 1.0}, {"label": "bad", "score": 0.0}]
    assert config["variables"] == {"question": "metadata.question"}
    assert config["template"] == "Question: {question}\nAnswer: {output}\nJudge it."
    assert config["output_mode"] == "json"

    # Saved unchanged: no new version.
    page.get_by_role("link", name="Edit").click()
    assert _choice(page, 1).get_by_label("Choice label").input_value() == "bad"
    assert page.get_by_label("Source of question").input_value() == "metadata.question"
    page.get_by_role("button", name="Save (new version if changed)").click()
    page.get_by_text("The definition did not change (still v1).").wait_for()
    assert evaluator.versions.count() == 1

    # A changed score is version 2.
    page.get_by_role("link", name="Edit").click()
    _choice(page, 1).get_by_label("Choice score").fill("0.25")
    page.get_by_role("button", name="Save (new version if changed)").click()
    page.get_by_text("Saved as v2.").wait_for()
    assert evaluator_version_latest(evaluator=evaluator).config["choices"][1]["score"] == 0.25
    page.screenshot(path=str(tmp_path / "judge.png"), full_page=True)


def test_code_check_with_params_and_a_bad_pattern(logged_in_page):
    page = logged_in_page
    page.goto("/evaluators/new/?kind=CODE")
    page.get_by_label("Name").fill("digits")
    pattern = page.locator("#id_param-regex-pattern")
    assert not pattern.is_visible()
    page.get_by_label("Check", exact=True).select_option("regex")
    pattern.fill("(\\d+")
    page.locator('[data-check="regex"]').get_by_label("Ignore case").check()
    page.get_by_role("button", name="Create").click()

    error = page.locator("#id_param-regex-pattern-error")
    error.wait_for()
    assert "params.pattern: not a regular expression" in error.inner_text()
    assert not Evaluator.objects.exists()
    page.locator("#id_param-regex-pattern").fill("^\\d+$")
    page.get_by_role("button", name="Create").click()
    page.wait_for_url(re.compile(r"/evaluators/digits/$"))
    config = evaluator_version_latest(evaluator=Evaluator.objects.get(name="digits")).config
    assert config["params"]["pattern"] == "^\\d+$" and config["params"]["ignore_case"] is True


def test_edited_json_is_flagged_and_wins(logged_in_page):
    page = logged_in_page
    evaluator = evaluator_create_from_template(key="toxicity", name="tox")
    page.goto("/evaluators/tox/edit/")
    page.get_by_text("Edit as JSON").click()
    notice = page.get_by_text("The JSON was changed: it will be saved instead of the fields above.")
    assert not notice.is_visible()
    json_box = page.locator("#id_definition")
    json_box.fill(json_box.input_value().replace('"model": ""', '"model": "from-json"'))
    notice.wait_for()
    page.get_by_label("Model", exact=True).fill("from-the-field")
    page.get_by_role("button", name="Save (new version if changed)").click()
    page.get_by_text("Saved as v2.").wait_for()
    assert evaluator_version_latest(evaluator=evaluator).config["model"] == "from-json"


def test_span_pane_opens_the_playground_on_the_span_and_runs(
    logged_in_page,
    provider,
    fake_openai,  # noqa: F811
):
    page = logged_in_page
    evaluator_create_from_template(key="toxicity", name="tox")
    evaluator_create_from_template(key="qa_correctness", name="qa")
    spans = factories.trace(output_value="You are an idiot")
    span = spans[0]
    fake_openai.answer("toxic", "It insults the user.")

    page.goto(f"/projects/default/traces/{span.trace.trace_id}/spans/{span.span_id}/")
    page.get_by_role("link", name="Test an evaluator on this span").click()
    page.wait_for_url(re.compile(r"/evaluators/test/\?project=default&span="))
    page.get_by_label("Search evaluators").fill("to")
    page.locator("#results").get_by_role("link", name="qa").wait_for(state="detached")
    page.get_by_role("link", name="tox").click()

    page.wait_for_url(re.compile(rf"/evaluators/tox/\?project=default&span={span.span_id}"))
    assert page.get_by_label("Span id").input_value() == span.span_id
    assert page.locator(f'#span-choices tr.selected[data-span-id="{span.span_id}"]').is_visible()
    page.get_by_role("button", name="Run").click()
    result = page.locator("#playground-result")
    result.get_by_text("It insults the user.", exact=True).wait_for()
    assert result.locator(".stat .value").first.inner_text() == "toxic"


def test_span_picker_filters_and_fills_the_span_id(logged_in_page):
    page = logged_in_page
    evaluator_create_from_template(key="toxicity", name="tox")
    spans = factories.trace()
    llm = next(s for s in spans if s.span_kind == "LLM")
    page.goto("/evaluators/tox/")
    page.get_by_label("Project").select_option("default")
    page.locator("#span-choices tr.picker-span").first.wait_for()
    assert page.locator("#span-choices tr.picker-span").count() == 3

    page.get_by_label("Filter").fill("span_knd = 'LLM'")
    page.locator("#span-choices").get_by_text("Column 1:").wait_for()
    page.get_by_label("Filter").fill("span_kind = 'LLM'")
    page.locator("#span-choices .picker-span").first.wait_for()
    assert page.locator("#span-choices tr.picker-span").count() == 1
    page.locator("#span-choices").get_by_role("button", name="Use").click()
    assert page.get_by_label("Span id").input_value() == llm.span_id
