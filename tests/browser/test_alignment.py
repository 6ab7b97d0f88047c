"""The alignment workspace in Chromium: from the evaluator page's calibration to a draft run
over the labelled items (the Celery task, run in-process), its comparison with the current
version, the flips, and "save as a new version"."""

import re

import pytest
from playwright.sync_api import expect

from tests.evalhub.calibration.helpers import labelled_spans, oracle_reply
from tests.evalhub.fake_openai import fake_openai  # noqa: F401
from tests.evalhub.tasks.factories import judge

pytestmark = pytest.mark.django_db(transaction=True)

PEOPLE = ["correct", "correct", "correct", "incorrect", "incorrect", "incorrect"]
CURRENT = ["correct", "correct", "correct", "correct", "correct", "correct"]


def test_a_better_draft_is_shown_side_by_side_and_saved(
    logged_in_page,
    provider,
    fake_openai,  # noqa: F811
    celery_eager,
    tmp_path,
):
    page = logged_in_page
    judge("Correctness", provider_id=provider.pk)
    labelled_spans([(h, c, 1) for h, c in zip(PEOPLE, CURRENT, strict=True)])
    fake_openai.reply = oracle_reply(
        {f"question {i}": label for i, label in enumerate(PEOPLE)}, default="correct"
    )

    page.goto("/evaluators/Correctness/")
    calibration = page.locator("#calibration")
    expect(calibration.locator('[data-version="1"] [data-metric="accuracy"]')).to_have_text(
        "50.0 %"
    )
    page.get_by_role("link", name=re.compile("Align: try a draft")).click()

    page.get_by_label("Project").select_option("default")
    page.get_by_label("Template").fill(
        "Question: {input}\nAnswer: {output}\nBe strict: is the answer correct?"
    )
    page.get_by_role("button", name="Run the draft on the labelled items").click()

    verdict = page.locator("[data-verdict]")
    expect(verdict).to_have_attribute("data-verdict", "better")
    expect(page.locator("[data-run-status]")).to_have_text("Completed")
    current = page.locator('[data-side="current"]')
    draft = page.locator('[data-side="draft"]')
    expect(current.locator('[data-metric="accuracy"]')).to_have_text("50.0 %")
    expect(draft.locator('[data-metric="accuracy"]')).to_have_text("100.0 %")
    expect(draft.locator('[data-metric="pairs"]')).to_have_text("6")
    expect(page.locator('tr[data-flip="fixed"]')).to_have_count(3)
    expect(page.locator('[data-flip-count="broken"]')).to_contain_text("(0)")
    page.screenshot(path=str(tmp_path / "alignment.png"), full_page=True)

    page.get_by_role("button", name="Save the draft as a new version").click()
    expect(page.get_by_text("Saved the draft as v2 of Correctness.")).to_be_visible()
    expect(page.locator("h1 .badge.accent")).to_have_text("v2")
    assert "Be strict" in page.locator("pre").first.inner_text()
