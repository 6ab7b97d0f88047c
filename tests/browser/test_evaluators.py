"""Evaluator hub pages in Chromium: the playground and Test connection (htmx swaps)."""

import pytest

from evalhub.evaluators.services import evaluator_create_from_template
from tests import factories
from tests.evalhub.fake_openai import VALID_KEY, fake_openai  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


def test_playground_runs_a_judge_on_a_span(logged_in_page, provider, fake_openai, tmp_path):  # noqa: F811
    page = logged_in_page
    evaluator_create_from_template(key="toxicity", name="tox")
    span = factories.trace(output_value="You are an idiot")[0]
    fake_openai.answer("toxic", "It insults the user.")

    page.goto("/evaluators/")
    page.get_by_role("link", name="tox").click()
    page.get_by_label("Span id").fill(span.span_id)
    page.get_by_role("button", name="Run").click()

    result = page.locator("#playground-result")
    result.get_by_text("It insults the user.", exact=True).wait_for()
    assert result.locator(".stat .value").first.inner_text() == "toxic"
    assert "You are an idiot" in result.locator("details pre").first.inner_text()
    page.screenshot(path=str(tmp_path / "playground.png"), full_page=True)


def test_test_connection_shows_the_answer_and_never_the_key(logged_in_page, provider, fake_openai):  # noqa: F811
    page = logged_in_page
    fake_openai.reply_with(content="pong")
    page.goto("/settings/providers/")
    page.get_by_role("button", name="Test connection").click()
    page.get_by_text("judge-small answered “pong”").wait_for()
    assert VALID_KEY not in page.content()
