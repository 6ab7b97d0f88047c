"""Shadow versions in Chromium: from a task's page, start a shadow with a candidate
definition; the task's run (the real engine, in-process) evaluates it beside the active
version; the comparison shows both against people and the flips with links to the traces;
"Promote" makes it the evaluator's next version."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from annotations.store.services import AnnotationInput, annotations_upsert
from evalhub.tasks.continuous import continuous_run_plan
from evalhub.tasks.engine import run_work
from tests import factories
from tests.evalhub.fake_openai import fake_openai  # noqa: F401
from tests.evalhub.shadow.helpers import CANDIDATE, strict_reply
from tests.evalhub.tasks.factories import judge, make_task

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_shadow_is_started_compared_and_promoted(
    logged_in_page,
    provider,
    fake_openai,  # noqa: F811
    monkeypatch,
    tmp_path,
):
    monkeypatch.setattr("evalhub.tasks.runs.run_dispatch", lambda run_id: None)
    fake_openai.reply = strict_reply({"question 0": "correct"})
    task = make_task(judge(provider_id=provider.pk), filter="span_kind = 'LLM'")
    page = logged_in_page

    page.goto(f"/tasks/{task.pk}/")
    page.get_by_role("link", name="Shadow versions").click()
    page.get_by_label("…or the candidate definition (JSON)").fill(
        json.dumps({**CANDIDATE, "provider_id": provider.pk})
    )
    page.get_by_role("button", name="Start the shadow").click()
    expect(page.get_by_text("Started a shadow of correctness")).to_be_visible()

    spans = [
        factories.trace(
            start=factories.BASE_TIME + timedelta(minutes=i), input_value=f"question {i}"
        )[2]
        for i in range(4)
    ]
    run = continuous_run_plan(task_id=task.pk, now=timezone.now() + timedelta(seconds=1))
    assert run_work(run_id=run.pk, worker="browser-test") == "finished"
    annotations_upsert(
        items=[
            AnnotationInput("SPAN", spans[i].span_id, "correctness", label=label)
            for i, label in ((0, "correct"), (1, "incorrect"), (2, "incorrect"))
        ]
    )
    page.reload()
    expect(page.locator("[data-verdict]")).to_have_attribute("data-verdict", "better")
    expect(page.locator('[data-part="between"] [data-metric="pairs"]')).to_have_text("4")
    expect(page.locator('[data-side="active"] [data-metric="accuracy"]')).to_have_text("33.3 %")
    expect(page.locator('[data-side="candidate"] [data-metric="accuracy"]')).to_have_text("100.0 %")
    expect(page.locator('tr[data-flip="fixed"]')).to_have_count(2)
    hour = page.locator("#distribution tbody tr")
    expect(hour).to_have_count(1)
    expect(hour.locator("td").nth(0)).to_have_text("4 / 1")  # correct: active / candidate
    expect(hour.locator("td").nth(1)).to_have_text("0 / 3")
    page.screenshot(path=str(tmp_path / "shadow.png"), full_page=True)
    page.locator('tr[data-flip="fixed"] a').first.click()
    expect(page).to_have_url(re.compile(r"/projects/default/traces/[0-9a-f]+/\?span="))
    page.go_back()

    page.get_by_role("button", name="Promote: make the candidate the active version").click()
    expect(page.get_by_text("Promoted: v2 of correctness is the active version")).to_be_visible()
    expect(page.locator("[data-shadow-status]")).to_have_attribute("data-shadow-status", "promoted")
