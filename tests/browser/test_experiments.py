"""Experiments in a real browser: a prompt experiment created from the page runs (on Celery,
eager here) against the fake model, is scored with a hub evaluator, a second one runs with
another prompt, and the two are compared side by side with the regressions filter."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from annotations.datasets.upload import UploadRow, dataset_upload
from annotations.datasets.versions import ExampleContent
from evalhub.evaluators.services import evaluator_create
from evalhub.experiments.models import Experiment

pytestmark = pytest.mark.django_db(transaction=True)


def _reply(body):
    """The fake model: the "careful" prompt answers right, the "sloppy" one does not."""
    text = body["messages"][-1]["content"]
    question = text.split(": ", 1)[1]
    answers = {"capital of France": "Paris", "2+2": "4", "largest ocean": "Pacific"}
    answer = answers[question] if text.startswith("Carefully") else "no idea"
    if question == "2+2":
        answer = "4"  # both get this one right
    return {
        "id": "x",
        "object": "chat.completion",
        "created": 0,
        "model": body["model"],
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": answer},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 1, "total_tokens": 13},
    }


@pytest.fixture
def seeded(transactional_db, provider, fake_openai, celery_eager):  # type: ignore[no-untyped-def]
    fake_openai.reply = _reply
    rows = [
        UploadRow(ExampleContent({"question": q}, {"answer": a}))
        for q, a in (("capital of France", "Paris"), ("2+2", "4"), ("largest ocean", "Pacific"))
    ]
    uploaded = dataset_upload(name="quiz", rows=rows)
    evaluator_create(
        name="exact",
        config={"kind": "CODE", "check": "exact_match", "params": {"case_sensitive": False}},
    )
    return uploaded.dataset


def _new_experiment(page, dataset, *, name: str, template: str) -> None:
    page.goto(f"/datasets/{dataset.pk}/experiments/")
    page.get_by_role("link", name="New prompt experiment…").click()
    page.get_by_label("New prompt's name").fill(name)
    page.get_by_label("Template").fill(template)
    page.get_by_label("Model").fill("gpt-4o-mini")
    page.get_by_label("Variables").fill("question = input.question")
    page.get_by_label("Experiment name").fill(name)
    page.get_by_role("button", name="Run experiment").click()
    expect(page.get_by_role("heading", name=name)).to_be_visible()
    expect(page.locator("[data-status]")).to_have_text("Completed")
    expect(page.locator("[data-runs]")).to_have_text("3")


def test_prompt_experiments_evaluated_and_compared(logged_in_page, seeded):
    page = logged_in_page
    _new_experiment(page, seeded, name="careful", template="Carefully: {{question}}")
    expect(page.locator("tr[data-example] [data-output]").first).to_have_text("Paris")
    page.get_by_label("Evaluate with…").select_option(label="exact")
    page.get_by_role("button", name="Evaluate").click()
    expect(page.locator('[data-evaluator="exact"]')).to_contain_text("mean 1.000")

    _new_experiment(page, seeded, name="sloppy", template="Quickly: {{question}}")
    page.get_by_label("Evaluate with…").select_option(label="exact")
    page.get_by_role("button", name="Evaluate").click()
    expect(page.locator('[data-evaluator="exact"]')).to_contain_text("mean 0.333")

    _careful, sloppy = Experiment.objects.order_by("id")
    page.goto(f"/datasets/{seeded.pk}/experiments/")
    page.get_by_label("Compare careful").check()
    page.get_by_label("Compare sloppy").check()
    page.get_by_role("button", name="Compare selected").click()
    rows = page.locator("table.compare tbody tr")
    expect(rows).to_have_count(3)
    expect(page.locator(f'[data-column="{sloppy.pk}"]')).to_contain_text("exact: 0.333")
    # Regressions: right with "careful", wrong with "sloppy" (2+2 is right in both).
    page.get_by_label("Only regressions").check()
    page.get_by_role("button", name="Apply").click()
    expect(rows).to_have_count(2)
    expect(rows.first.locator("[data-delta]")).to_have_text("-1.00")
    expect(page).to_have_url(re.compile(r"/experiments/compare/\?.*regressions=1"))
