"""The whole evaluation loop as a user walks it, in Chromium with a real Celery worker, the fake
judge and a real OpenTelemetry exporter: an evaluator made from a template, a continuous task
made through the form, traces sent over OTLP/HTTP, the run that scored them, a jump to exactly
the run's items, the judge's label filtered on Traces, Spans and Sessions (the same traces), the
traces labelled by a person in a Traces queue, and the person compared with the judge (kappa)."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from annotations.models import Annotation
from evalhub.evaluators.models import Evaluator
from evalhub.tasks.models import RunKind, Task, TaskRun
from tests import factories
from tests.browser.fixtures import (
    label_form_ready,
    row_keys,
    rows_filtered,
    trace_queue_from_filter,
)
from tests.evalhub.fake_openai import fake_openai  # noqa: F401
from tests.evalhub.tasks.worker_process import Worker, broker_flush, wait_for
from tracing.models import Span

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="a worker process needs PostgreSQL"
    ),
]

QUESTIONS = {  # question → the answer the app gave
    "How long do refunds take?": "Five days.",
    "Is shipping free?": "Yes, over 50 euros.",
    "Can I change my address?": "Yes, in your account.",
    "Do you ship abroad?": "We sell cheese.",
    "How do I reset my password?": "Try turning it off and on.",
    "Where is my parcel?": "The moon.",
}


@pytest.fixture
def worker(tmp_path):  # type: ignore[no-untyped-def]
    broker_flush()
    process = Worker(tmp_path).start()
    yield process
    process.stop()
    broker_flush()


def _send(url: str, key: str, questions: list[str]) -> None:
    """One trace per question from an instrumented app: an AGENT root and its LLM call, each
    trace its own conversation (``session.id``), through the OTLP/HTTP protobuf exporter."""
    provider = TracerProvider(resource=Resource.create({"openinference.project.name": "default"}))
    exporter = OTLPSpanExporter(endpoint=f"{url}/v1/traces", headers={"api_key": key})
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("support-bot")
    for question in questions:
        answer = QUESTIONS[question]
        session = {"session.id": f"chat {question}"}
        with tracer.start_as_current_span("agent") as root:
            root.set_attributes(
                {"openinference.span.kind": "AGENT", "input.value": question, **session}
            )
            with tracer.start_as_current_span("llm") as llm:
                llm.set_attributes(
                    {
                        "openinference.span.kind": "LLM",
                        "input.value": question,
                        "output.value": answer,
                        **session,
                    }
                )
            root.set_attribute("output.value", answer)
    provider.shutdown()


def _results(count: int):  # type: ignore[no-untyped-def]
    return lambda: Annotation.objects.filter(name="Correctness").count() >= count


def test_the_evaluation_loop_end_to_end(
    logged_in_page,
    provider,
    fake_openai,  # noqa: F811
    worker,
    live_server,
    tmp_path,
):
    page = logged_in_page
    key = factories.api_key("exporter", scope="ingest")
    factories.project("default")

    # 1. An evaluator from the template library, named and given its provider before saving.
    page.goto("/evaluators/templates/")
    page.get_by_role("link", name="Use Q&A correctness").click()
    page.wait_for_url(re.compile(r"/evaluators/new/\?template=qa_correctness"))
    assert not Evaluator.objects.exists()
    page.get_by_label("Name").fill("Correctness")
    page.get_by_label("Provider").select_option(label=provider.name)
    page.get_by_role("button", name="Create").click()
    page.wait_for_url(re.compile(r"/evaluators/Correctness/$"))
    evaluator = Evaluator.objects.get(name="Correctness")

    # 2. A continuous task through the form: traces in which an LLM span answered.
    page.goto("/tasks/new/")
    page.locator("#id_name").fill("answer quality")
    page.locator("#id_project").select_option("default")
    page.locator(f'input.evaluator-choice[value="{evaluator.pk}"]').check()
    page.locator('input[name="granularity"][value="trace"]').check()
    page.locator("#id_filter").fill("span_kind = 'LLM'")
    assert page.get_by_label("Run continuously").is_checked()
    page.get_by_label("Check every (seconds)").fill("5")
    page.locator("#id_quiet_seconds").fill("0")
    page.get_by_role("button", name="Create task").click()
    page.wait_for_url(re.compile(r"/tasks/\d+/$"))
    task = Task.objects.get(name="answer quality")

    # 3. Traffic arrives over OTLP; the judge finds the first three answers correct and the
    # last three incorrect, each batch scored by the worker's continuous runs.
    questions = list(QUESTIONS)
    fake_openai.answer("correct", "It answers the question.")
    _send(live_server.url, key, questions[:3])
    wait_for(_results(3), timeout=90, worker=worker)
    fake_openai.answer("incorrect", "It does not answer the question.")
    _send(live_server.url, key, questions[3:])
    wait_for(_results(6), timeout=90, worker=worker)
    assert Annotation.objects.filter(name="Correctness").count() == 6

    def last_run_finished() -> TaskRun | None:
        run = TaskRun.objects.filter(task=task, kind=RunKind.CONTINUOUS).order_by("-id").first()
        return run if run is not None and not run.is_active and run.succeeded else None

    run = wait_for(last_run_finished, timeout=60, worker=worker)
    assert isinstance(run, TaskRun)
    incorrect = {
        a.span.trace.trace_id if a.span_id else a.trace.trace_id
        for a in Annotation.objects.filter(name="Correctness", label="incorrect")
    }
    assert len(incorrect) == 3

    # 4. The task page lists the run; the run page lists what it scored.
    page.goto(f"/tasks/{task.pk}/")
    page.get_by_role("link", name=f"#{run.pk}").click()
    page.wait_for_url(re.compile(rf"/runs/{run.pk}/$"))
    page.locator(".run-status").get_by_text("Completed").wait_for()
    items = page.locator("#run-items table tbody tr")
    assert items.count() == run.evaluated
    page.screenshot(path=str(tmp_path / "run.png"), full_page=True)

    # 5. "View traces" opens exactly the run's items, as an editable filter.
    page.get_by_role("link", name="View traces").first.click()
    page.wait_for_url(re.compile(r"/projects/default/traces/\?q=task_run"))
    assert page.locator("#id_q").input_value() == f"task_run = {run.pk}"
    run_traces = set(row_keys(page))
    assert len(run_traces) == run.evaluated and run_traces <= incorrect

    # 6. The judge's label, in the documented syntax, selects the same traces on every tab.
    expression = "eval.Correctness.label = 'incorrect'"
    assert rows_filtered(page, "traces", expression) == incorrect
    spans = rows_filtered(page, "spans", expression)
    assert {Span.objects.get(span_id=key).trace.trace_id for key in spans} == incorrect
    sessions = rows_filtered(page, "sessions", expression)
    assert sessions == {f"chat {q}" for q in questions[3:]}

    # 7. A person labels every trace in a Traces queue, with a config of the judge's name.
    page.goto("/settings/annotation-configs/")
    page.get_by_role("link", name="New annotation config").first.click()
    page.get_by_label("Name").fill("Correctness")
    page.get_by_label("Label 1").fill("correct")
    page.get_by_label("Score 1").fill("1")
    page.get_by_label("Label 2").fill("incorrect")
    page.get_by_label("Score 2").fill("0")
    page.get_by_role("button", name="Create").click()
    page.wait_for_url(re.compile(r"/settings/annotation-configs/$"))
    trace_queue_from_filter(
        page,
        name="Answer review",
        config="Correctness",
        expression="span_kind = 'AGENT'",
        added=6,
    )
    # The person agrees with the judge except on "Is shipping free?", which they find
    # incorrect: 5 of 6 agree.
    for _ in questions:
        label_form_ready(page)
        shown = next(q for q in questions if page.get_by_text(q).first.is_visible())
        wrong = shown in questions[3:] or shown == "Is shipping free?"
        page.keyboard.press("2" if wrong else "1")
        with page.expect_navigation():
            page.keyboard.press("Enter")
    page.locator("#queue-done").wait_for()

    # 8. Agreement of the person with the judge: 6 pairs, 5 agree, kappa 2/3.
    page.goto("/projects/default/annotations/agreement/")
    assert "6 pairs found" in page.locator("p.pairing").inner_text()
    section = page.locator('section.agreement[data-name="Correctness"]')
    cells = section.locator("table.agreement-table tbody tr").first.locator("td").all_inner_texts()
    # person: c i c i i i, judge: c c c i i i → p_o = 5/6, p_e = (2·3 + 4·3)/36 = 1/2,
    # kappa = (5/6 - 1/2) / (1/2) = 2/3
    # trace labels against the judge's trace-level results: none paired via a root span
    assert cells[:7] == ["reviewer", "Correctness", "Human - LLM", "6", "0", "83%", "0.67"]
    page.screenshot(path=str(tmp_path / "agreement.png"), full_page=True)
