"""The evaluation loop in Chromium, from a task's results on: filter by the judge's label on the
Traces, Spans and Sessions tabs (the same traces each time), label the traces in a Traces queue,
and compare the person with the judge on the agreement page (Cohen's kappa)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from annotations.rubrics.services import annotation_config_create
from evalhub.tasks.backfill import run_backfill_create
from evalhub.tasks.engine import run_work
from tests import factories
from tests.browser.fixtures import label_form_ready, rows_filtered, trace_queue_from_filter
from tests.evalhub.tasks.factories import code_check, make_task
from tracing.models import Span

pytestmark = pytest.mark.django_db(transaction=True)

OUTPUTS = [  # trace n: its answer; the judge ("mentions_refund") sees a refund in 0 and 2
    "A refund takes five days.",
    "Shipping is free.",
    "Your refund was sent.",
    "We reset your password.",
]


@pytest.fixture
def judged():  # type: ignore[no-untyped-def]
    """Four traces, each its own session; a task ran the code evaluator "mentions_refund" on
    their root spans (``parent_id IS NULL``)."""
    now = timezone.now()
    traces = [
        factories.trace(
            session_id=f"chat-{n}",
            start=now - timedelta(minutes=10 - n),
            input_value=f"question {n}",
            output_value=text,
        )
        for n, text in enumerate(OUTPUTS)
    ]
    task = make_task(code_check(), filter="parent_id IS NULL", quiet_seconds=0)
    run = run_backfill_create(task=task, start=now - timedelta(days=1))
    assert run_work(run_id=run.pk, worker="test") == "finished"
    return traces


def test_filter_by_the_judges_label_then_agreement_of_a_traces_queue(
    logged_in_page, judged, tmp_path
):
    page = logged_in_page
    trace_ids = [spans[0].trace.trace_id for spans in judged]
    refund = {trace_ids[0], trace_ids[2]}

    # The Traces tab lists the whole trace's results, the judge's on its root span included.
    page.goto("/projects/default/traces/")
    badges = page.locator("#rows .badges .badge").all_inner_texts()
    assert badges.count("mentions_refund: contains") == 2
    assert badges.count("mentions_refund: does_not_contain") == 2

    # The same filter on each tab: the same traces.
    expression = "eval.mentions_refund.label = 'contains'"
    assert rows_filtered(page, "traces", expression) == refund
    spans = rows_filtered(page, "spans", expression)
    assert {Span.objects.get(span_id=key).trace.trace_id for key in spans} == refund
    sessions = rows_filtered(page, "sessions", expression)
    assert sessions == {"chat-0", "chat-2"}
    page.screenshot(path=str(tmp_path / "sessions.png"), full_page=True)

    # On Traces a trace is listed when any span matches; "Root span only" asks the root.
    assert rows_filtered(page, "traces", "span_kind = 'LLM'") == set(trace_ids)
    page.get_by_label("Root span only").check()
    page.wait_for_url(re.compile(r"root=1"))
    page.locator("#results").get_by_text("No traces match").wait_for()

    # A Traces queue filled from a filter on a child span, labelled by a person.
    annotation_config_create(
        name="mentions_refund",
        kind="CATEGORICAL",
        values=[{"label": "contains", "score": 1}, {"label": "does_not_contain", "score": 0}],
    )
    trace_queue_from_filter(
        page,
        name="Refund answers",
        config="mentions_refund",
        expression="span_kind = 'LLM'",
        added=4,
    )
    # Newest first: traces 3, 2, 1, 0. The person sees a refund only in trace 0, so they
    # disagree with the judge on trace 2.
    for n, key in ((3, "2"), (2, "2"), (1, "2"), (0, "1")):
        label_form_ready(page)
        page.get_by_text(f"question {n}").first.wait_for()
        page.keyboard.press(key)
        with page.expect_navigation():
            page.keyboard.press("Enter")
    page.locator("#queue-done").wait_for()

    # Agreement: the trace labels against the judge's root-span results, with kappa.
    page.goto("/projects/default/annotations/agreement/")
    pairing = page.locator("p.pairing")
    assert "4 pairs found" in pairing.inner_text()
    assert "4 trace labels with a root-span result" in pairing.inner_text()
    section = page.locator('section.agreement[data-name="mentions_refund"]')
    row = section.locator("table.agreement-table tbody tr").first
    cells = row.locator("td").all_inner_texts()
    # person: c d d d, judge: c d c d → p_o = 3/4, p_e = (1·2 + 3·2) / 16 = 1/2, kappa = 1/2
    assert cells[:4] == ["reviewer", "mentions_refund", "Human - CODE", "4"]
    assert cells[4:7] == ["4", "75%", "0.50"]
    section.get_by_text("reviewer vs mentions_refund: 1 disagreement to review").click()
    assert section.locator(".disagreements a").first.get_attribute("href") == (
        f"/projects/default/traces/{trace_ids[2]}/"
    )
    page.screenshot(path=str(tmp_path / "agreement.png"), full_page=True)
