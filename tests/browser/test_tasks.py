"""Tasks in Chromium: create a task through the form (live count, variable previews, Test
task), save it with a backfill, work the run, read its log, and open the evaluated traces."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from annotations.models import Annotation
from evalhub.evaluators.services import evaluator_create
from evalhub.tasks.engine import run_work
from evalhub.tasks.models import Task, TaskRun
from tests import factories
from tests.evalhub.fake_openai import fake_openai  # noqa: F401
from tests.evalhub.tasks.factories import JUDGE

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def dispatched(monkeypatch):
    """Runs are queued, not sent to a broker: the test works them with ``run_work``."""
    sent: list[int] = []
    monkeypatch.setattr("evalhub.tasks.runs.run_dispatch", sent.append)
    return sent


def test_create_test_save_backfill_and_view_traces(
    logged_in_page,
    provider,
    fake_openai,  # noqa: F811
    dispatched,
    tmp_path,
):
    page = logged_in_page
    evaluator = evaluator_create(name="correctness", config=JUDGE)
    now = timezone.now()
    traces = [factories.trace(start=now - timedelta(hours=h)) for h in (1, 2)]
    fake_openai.answer("correct", "The answer states the refund window.")

    page.goto("/tasks/")
    page.get_by_role("link", name="New task").first.click()
    page.wait_for_url(re.compile(r"/tasks/new/"))
    page.locator("#id_name").fill("refund answers")
    page.locator("#id_project").select_option("default")
    page.locator(f'input.evaluator-choice[value="{evaluator.pk}"]').check()
    # The evaluator's variables appear, previewed on the newest matching span.
    mapping = page.locator('.mapping[data-evaluator="correctness"]')
    mapping.wait_for()
    assert "Refunds are accepted within 30 days." in mapping.inner_text()
    page.locator('input[name="granularity"][value="trace"]').check()
    page.locator("#id_filter").fill("span_kind = 'AGENT'")
    page.locator("#match-count").get_by_text("2 traces matched in the last 24 hours.").wait_for()
    # A mistake in the filter shows where it is.
    page.locator("#id_filter").fill("span_knd = 'AGENT'")
    page.locator("#match-count").get_by_text("Column 1:").wait_for()
    page.locator("#id_filter").fill("span_kind = 'AGENT'")
    page.locator("#match-count").get_by_text("2 traces matched").wait_for()
    quiet = page.locator("#id_quiet_seconds")
    assert quiet.get_attribute("placeholder") == "default: 60 (1 minute)"
    quiet.fill("0")

    # Test task: results for the two traces, nothing written.
    page.get_by_role("button", name="Test task").click()
    results = page.locator("#test-results")
    results.locator(".result-label").first.wait_for()
    assert results.locator(".result-label").all_inner_texts() == ["correct", "correct"]
    assert results.get_by_text("The answer states the refund window.").count() == 2
    assert Annotation.objects.count() == 0 and not Task.objects.exists()
    page.screenshot(path=str(tmp_path / "task-form.png"), full_page=True)

    # Save with a one-time backfill over the last day.
    assert not page.locator("[data-backfill-fields]").is_visible()
    page.get_by_label("Run a one-time backfill on save").check()
    start = (now - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    page.locator("#id_backfill-start").fill(start)
    page.get_by_role("button", name="Create task").click()
    page.wait_for_url(re.compile(r"/tasks/\d+/$"))
    page.get_by_text("backfill run #").wait_for()
    run = TaskRun.objects.get()
    assert dispatched == [run.pk]
    assert page.locator(".run-pill").inner_text() == "queued"

    # The worker evaluates it.
    assert run_work(run_id=run.pk, worker="test") == "finished"
    page.get_by_role("link", name=f"#{run.pk}").click()
    page.wait_for_url(re.compile(rf"/runs/{run.pk}/$"))
    assert page.locator(".run-status").inner_text() == "Completed"
    assert "2 / 2 items · 100.0 %" in page.locator(".progress-text").inner_text()
    assert page.locator("#run-live").get_attribute("hx-trigger") is None
    assert "completed: 2 succeeded, 0 errored, 0 skipped" in page.locator(".run-log").inner_text()
    page.screenshot(path=str(tmp_path / "run.png"), full_page=True)

    # The run lists its items with their results; an item opens with its result highlighted.
    items = page.locator("#run-items table tbody tr")
    assert items.count() == 2
    assert items.locator(".badge", has_text="correct").count() == 2
    page.locator("#run-items").get_by_role("link", name="Skipped").click()
    page.locator("#run-items").get_by_text("No skipped items.").wait_for()
    assert "outcome=skipped" in page.url
    page.locator("#run-items").get_by_role("link", name="All").click()
    page.locator("#run-items table tbody tr").first.wait_for()
    page.locator("#run-items").get_by_role("link", name="correctness").first.click()
    page.wait_for_url(re.compile(r"/projects/default/traces/[0-9a-f]+/\?result=correctness"))
    highlighted = page.locator("#highlighted-result")
    assert "correct" in highlighted.inner_text() and highlighted.is_visible()
    page.go_back()
    page.wait_for_url(re.compile(rf"/runs/{run.pk}/"))

    # View traces: the trace browser on exactly the run's items, with their new labels.
    page.get_by_role("link", name="View traces").first.click()
    page.wait_for_url(re.compile(r"/projects/default/traces/\?q=task_run"))
    assert page.locator("#id_q").input_value() == f"task_run = {run.pk}"
    rows = page.locator("#rows tr")
    assert rows.count() == 2
    badges = page.locator("#rows .badges .badge").all_inner_texts()
    assert badges.count("correctness: correct") == 2
    assert {traces[0][0].trace.trace_id, traces[1][0].trace.trace_id} == set(
        rows.evaluate_all("rows => rows.map(r => r.dataset.key)")
    )
    page.screenshot(path=str(tmp_path / "traces.png"), full_page=True)


def test_evaluate_selected_rows_from_the_trace_browser(
    logged_in_page,
    provider,
    fake_openai,  # noqa: F811
    dispatched,
):
    page = logged_in_page
    evaluator_create(name="correctness", config=JUDGE)
    spans = factories.trace(start=timezone.now() - timedelta(hours=1))
    factories.trace(start=timezone.now() - timedelta(hours=2))

    page.goto("/projects/default/traces/")
    bar = page.locator(".bulk-evaluate select")
    bar.wait_for(state="attached")
    # The action is in the "Selected" menu, opened from the keyboard.
    menu = page.locator("summary", has_text="Selected")
    menu.focus()
    page.keyboard.press("Enter")
    evaluate = page.get_by_role("button", name="Evaluate", exact=True)
    expect(evaluate).to_be_disabled()
    page.keyboard.press("Escape")
    page.get_by_label(f"Select {spans[0].name}").first.check()
    menu.focus()
    page.keyboard.press("Enter")
    expect(evaluate).to_be_enabled()
    bar.select_option(label="correctness")
    evaluate.click()
    page.wait_for_url(re.compile(r"/runs/\d+/$"))
    run = TaskRun.objects.get()
    assert run.kind == "manual" and run.sampled == 1 and dispatched == [run.pk]
    assert page.locator(".run-status").inner_text() == "Queued"
    assert page.locator("#run-live").get_attribute("hx-trigger") == "every 2s"
    banner = page.locator(".message.run-queued")
    expect(banner).to_have_text(f"Run #{run.pk} is queued: 1 traces to evaluate.")

    # Once the run leaves the queue, the next poll shows it and the "queued" banner goes.
    TaskRun.objects.filter(pk=run.pk).update(status="running", started_at=timezone.now())
    expect(page.locator(".run-status")).to_have_text("Running")
    expect(banner).to_have_count(0)
