"""Experiments in a real browser: a prompt experiment created from the page runs (on Celery,
eager here) against the fake model, is scored with a hub evaluator, a task is attached to the
dataset, a second experiment runs with another prompt and is scored by the task on its own
(its run's pill, log and "View runs" jump), and the two are compared side by side with the
regressions filter and each output's trace."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from annotations.datasets.upload import UploadRow, dataset_upload
from annotations.datasets.versions import ExampleContent
from evalhub.evaluators.services import evaluator_create
from evalhub.experiments.models import Experiment
from evalhub.tasks.engine import run_work
from evalhub.tasks.models import Task, TaskRun
from tests.evalhub.fake_openai import completion

pytestmark = pytest.mark.django_db(transaction=True)


def _reply(body):
    """The fake model: the "careful" prompt answers right, the "sloppy" one does not."""
    text = body["messages"][-1]["content"]
    question = text.split(": ", 1)[1]
    answers = {"capital of France": "Paris", "2+2": "4", "largest ocean": "Pacific"}
    answer = answers[question] if text.startswith("Carefully") else "no idea"
    if question == "2+2":
        answer = "4"  # both get this one right
    return completion(body, content=answer, tokens=(12, 1))


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


def test_prompt_experiments_evaluated_and_compared(logged_in_page, seeded, dispatched):
    page = logged_in_page
    _new_experiment(page, seeded, name="careful", template="Carefully: {{question}}")
    expect(page.locator("tr[data-example] [data-output]").first).to_have_text("Paris")
    page.get_by_label("Evaluate with…").select_option(label="exact")
    page.get_by_role("button", name="Evaluate").click()
    expect(page.locator('[data-evaluator="exact"]')).to_contain_text("mean 1.000")

    # A task on the dataset: every new experiment on it is scored by its evaluators.
    page.goto(f"/datasets/{seeded.pk}/experiments/")
    page.get_by_role("link", name="New task…").click()
    page.get_by_label("Name").fill("auto exact")
    page.get_by_role("checkbox", name=re.compile(r"^exact")).check()
    mapping = page.get_by_label("exact: output")
    expect(mapping.locator("optgroup")).to_have_count(2)  # the run's fields, its trace's spans
    expect(mapping).to_have_value("output")
    page.get_by_role("button", name="Create task").click()
    expect(page.get_by_role("heading", name="auto exact")).to_be_visible()
    expect(page.locator(".task-facts")).to_contain_text("quiz")

    _new_experiment(page, seeded, name="sloppy", template="Quickly: {{question}}")
    # Its completion listed a run of the task, sent to a worker (this test works it).
    task = Task.objects.get(name="auto exact")
    (run,) = TaskRun.objects.filter(task=task)
    assert dispatched == [run.pk]
    assert run_work(run_id=run.pk, worker="test") == "finished"
    # Scored by the task, with nobody asking.
    page.reload()
    expect(page.locator('[data-evaluator="exact"]')).to_contain_text("mean 0.333")

    page.goto(f"/tasks/{task.pk}/")
    pill = page.locator("a.run-pill")
    expect(pill).to_have_count(1)
    expect(pill).to_have_text("completed")
    pill.click()
    expect(page.locator(".run-status")).to_have_text("Completed")
    expect(page.locator(".run-facts")).to_contain_text("sloppy")
    page.get_by_role("link", name="View runs").click()
    expect(page.get_by_role("heading", name="sloppy")).to_be_visible()

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
    # Each output links to its run's trace: the run and its model call.
    rows.first.locator("[data-cell]").nth(1).get_by_role("link", name="trace").click()
    expect(page.get_by_text("experiment run").first).to_be_visible()
