"""Labeling queues in Chromium: a lead creates a queue and fills it from a filter; an annotator
works through it with the keyboard only (1, Enter, s, ←) and sees the progress."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from annotations.models import Annotation
from annotations.queues.models import LabelingQueueItem
from annotations.rubrics.services import annotation_config_create
from evalhub.identity.roles import annotator_role_grant
from tests import factories
from tests.browser.fixtures import PASSWORD, label_form_ready

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def annotator(django_user_model, transactional_db):
    user = django_user_model.objects.create_user(username="annie", password=PASSWORD)
    annotator_role_grant(user=user)
    return user


def log_in(page, username: str) -> None:
    page.goto("/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()


def test_a_queue_from_a_filter_labelled_with_the_keyboard(logged_in_page, annotator, tmp_path):
    page = logged_in_page
    annotation_config_create(
        name="correctness",
        kind="CATEGORICAL",
        values=[{"label": "correct", "score": 1}, {"label": "incorrect", "score": 0}],
    )
    for minute in range(3):
        factories.trace(
            start=factories.BASE_TIME + timedelta(minutes=minute),
            llm_latency_ms=2000,
            input_value=f"question {minute}",
        )
    factories.trace(start=factories.BASE_TIME + timedelta(minutes=9), llm_latency_ms=10)

    # The lead creates the queue and fills it from a filter.
    page.goto("/queues/")
    page.get_by_role("link", name="New queue").click()
    page.get_by_label("Name").fill("Slow answers")
    page.get_by_label("Instructions").fill("Is the answer correct?")
    page.get_by_label("Items are").select_option("TRACE")
    page.get_by_label("correctness").check()
    page.get_by_label("annie").check()
    page.get_by_role("button", name="Create queue").click()
    page.get_by_role("heading", name="Add traces from a filter").wait_for()

    page.get_by_label("Filter").fill("latncy_ms > 1000")
    page.get_by_role("button", name="Add to queue").click()
    page.locator("#filter-error").get_by_text("did you mean 'latency_ms'", exact=False).wait_for()
    assert not LabelingQueueItem.objects.exists()

    page.get_by_label("Filter").fill("span_kind = 'LLM' and latency_ms > 1000")
    page.get_by_label("Cap").fill("10")
    page.get_by_role("button", name="Add to queue").click()
    page.get_by_text("Added 3 traces to Slow answers.").wait_for()
    assert page.locator("#progress [data-progress=pending]").inner_text() == "3"
    page.get_by_role("button", name="Log out").click()

    # The annotator lands on their queues and labels with the keyboard only.
    log_in(page, "annie")
    assert page.url.endswith("/queues/")
    page.get_by_role("link", name="Label").click()
    items = list(LabelingQueueItem.objects.order_by("id"))
    first, second, third = items
    item_url = re.compile(r"/queues/\d+/label/(\d+)/$")

    def at(item) -> None:
        page.wait_for_url(item_url)
        assert page.url.endswith(f"/label/{item.pk}/"), page.url
        label_form_ready(page)

    at(first)
    page.get_by_text("question 2").first.wait_for()  # newest first: the trace's input
    page.keyboard.press("1")
    assert page.locator("input[type=radio][value=correct]").is_checked()
    with page.expect_navigation():
        page.keyboard.press("Enter")
    at(second)
    with page.expect_navigation():
        page.keyboard.press("s")
    at(third)
    with page.expect_navigation():
        page.keyboard.press("ArrowLeft")
    at(second)
    page.locator("[data-my-state=SKIPPED]").wait_for()
    page.keyboard.press("2")
    assert page.locator("input[type=radio][value=incorrect]").is_checked()
    with page.expect_navigation():
        page.keyboard.press("Enter")
    at(third)
    page.keyboard.press("1")
    with page.expect_navigation():
        page.keyboard.press("Enter")

    done = page.locator("#queue-done")
    done.get_by_text("You are done with Slow answers").wait_for()
    assert page.locator("[data-mine=done]").inner_text() == "3"
    page.screenshot(path=str(tmp_path / "queue-done.png"), full_page=True)

    labels = dict(Annotation.objects.filter(identifier="annie").values_list("trace_id", "label"))
    assert labels == {
        first.trace_id: "correct",
        second.trace_id: "incorrect",
        third.trace_id: "correct",
    }

    page.get_by_role("link", name="Back to the queue").click()
    assert page.locator("#progress [data-progress=completed]").inner_text() == "3"
    assert page.locator("#progress [data-progress=pending]").inner_text() == "0"

    page.goto("/settings/providers/")
    page.get_by_text("Not available to annotators").wait_for()
