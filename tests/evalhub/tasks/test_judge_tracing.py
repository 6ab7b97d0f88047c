"""Enable tracing: a task's judge calls are recorded as OpenInference LLM spans in
"<project> · judge traces", written through the trace store, and each result links to the trace
of the call that produced it."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from annotations.models import Annotation
from evalhub.tasks.continuous import continuous_run_plan
from evalhub.tasks.engine import run_work
from evalhub.tasks.judge_tracing import judge_project_name
from evalhub.tasks.services import task_update
from tests import factories
from tests.evalhub.fake_openai import Behavior
from tests.evalhub.tasks.factories import code_check, judge, make_task
from tracing.models import ModelPrice, Project, Span
from tracing.store.pricing import price_cache_clear

pytestmark = pytest.mark.django_db

JUDGE_PROJECT = "default · judge traces"


@pytest.fixture(autouse=True)
def _price():
    ModelPrice.objects.create(
        model_prefix="judge-small",
        prompt_per_million=Decimal("1.0"),
        completion_per_million=Decimal("2.0"),
    )
    price_cache_clear()
    yield
    price_cache_clear()


def _run(task, fast_retry):
    run = continuous_run_plan(task_id=task.pk, now=timezone.now() + timedelta(seconds=1))
    assert run_work(run_id=run.pk, worker="test", retry=fast_retry) == "finished"
    run.refresh_from_db()
    return run


def test_each_judge_call_is_an_llm_span_and_each_result_links_to_it(
    client, django_user_model, provider, fake_openai, fast_retry
):
    fake_openai.answer("correct", "It quotes the policy.")
    fake_openai.enqueue(Behavior.status(503))  # the first call is retried once
    task = make_task(judge(), code_check(), filter="span_kind = 'LLM'", tracing=True)
    llm_spans = [factories.trace()[2] for _ in range(2)]
    run = _run(task, fast_retry)
    assert run.succeeded == 4

    spans = list(Span.objects.filter(project__name=JUDGE_PROJECT).order_by("start_time"))
    assert len(spans) == 2  # the code evaluator makes no call
    for span in spans:
        assert span.span_kind == "LLM" and span.status_code == "OK"
        assert span.name == "judge correctness"
        llm = span.attributes["llm"]
        (message,) = llm["input_messages"]
        assert message["message"]["role"] == "user"
        assert "Question: What is the refund policy?" in message["message"]["content"]
        assert span.input_value.startswith("[user]\nQuestion: What is the refund policy?")
        (answer,) = llm["output_messages"]
        call = answer["message"]["tool_calls"][0]["tool_call"]["function"]
        assert call["name"] == "record_evaluation"
        assert json.loads(call["arguments"])["label"] == "correct"
        assert json.loads(llm["tools"][0]["tool"]["json_schema"])["type"] == "function"
        assert json.loads(llm["invocation_parameters"])["temperature"] == 0
        assert span.model_name == "judge-small"
        assert span.prompt_tokens and span.completion_tokens and span.total_tokens
        expected = (span.prompt_tokens * 1.0 + span.completion_tokens * 2.0) / 1_000_000
        assert span.cost == pytest.approx(expected)
        assert span.latency_ms > 0
        assert span.session_key == f"task run {run.pk}"
        assert span.metadata["task_run"] == run.pk and span.metadata["evaluator"] == "correctness"
    retried = [s for s in spans if s.events]
    assert len(retried) == 1
    (event,) = retried[0].events
    assert event["name"] == "retry" and event["attributes"]["http.status_code"] == 503
    assert retried[0].metadata["attempts"] == 2

    # Each result names the trace of its call; the call was about that result's span.
    results = Annotation.objects.filter(name="correctness")
    assert {a.span.span_id for a in results} == {s.span_id for s in llm_spans}
    by_trace = {s.trace.trace_id: s for s in spans}
    for annotation in results:
        judge_span = by_trace[annotation.metadata["judge_trace_id"]]
        assert annotation.metadata["judge_project"] == JUDGE_PROJECT
        assert judge_span.metadata["target_id"] == annotation.span.span_id
    items = {i.target_key: i for i in run.items.all()}
    for span in llm_spans:
        entry = next(r for r in items[span.span_id].results if r["evaluator"] == "correctness")
        assert entry["judge_trace_id"] in by_trace

    # The links resolve: the run's items list, the span pane, and the judge's trace page.
    client.force_login(django_user_model.objects.create_user("alice"))
    trace_id = results[0].metadata["judge_trace_id"]
    judge_url = f"/projects/default%20%C2%B7%20judge%20traces/traces/{trace_id}/"
    run_page = client.get(f"/runs/{run.pk}/").content.decode()
    assert f'href="{judge_url}">judge trace</a>' in run_page
    source = results[0].span
    pane = client.get(
        f"/projects/default/traces/{source.trace.trace_id}/spans/{source.span_id}/"
    ).content.decode()
    assert f'href="{judge_url}">judge trace</a>' in pane
    page = client.get(judge_url)
    assert page.status_code == 200
    assert "judge correctness" in page.content.decode()
    assert "record_evaluation" in page.content.decode()


def test_a_failed_call_is_an_error_span_with_its_attempts(provider, fake_openai, fast_retry):
    fake_openai.enqueue(Behavior.status(500), Behavior.status(500), Behavior.garbage())
    task = make_task(judge(), filter="span_kind = 'LLM'", tracing=True)
    factories.trace()
    run = _run(task, fast_retry)
    assert run.errored == 1
    (span,) = Span.objects.filter(project__name=JUDGE_PROJECT)
    assert span.status_code == "ERROR"
    assert "cannot be read" in span.status_message
    names = [e["name"] for e in span.events]
    assert names == ["retry", "retry", "exception"]
    assert "cannot be read" in span.events[-1]["attributes"]["exception.message"]
    (annotation,) = Annotation.objects.filter(name="correctness")
    assert annotation.metadata["judge_trace_id"] == span.trace.trace_id


def test_tracing_off_records_nothing_and_can_be_turned_on(provider, fake_openai, fast_retry):
    task = make_task(judge(), filter="span_kind = 'LLM'")
    factories.trace()
    _run(task, fast_retry)
    assert not Project.objects.filter(name=JUDGE_PROJECT).exists()
    assert "judge_trace_id" not in Annotation.objects.get().metadata
    task = task_update(task=task, changes={"tracing": True})
    factories.trace()
    run = _run(task, fast_retry)
    assert run.config["tracing"] is True
    assert Span.objects.filter(project__name=JUDGE_PROJECT).count() == 1


def test_the_judge_project_name_fits_the_limit():
    assert judge_project_name("shop") == "shop · judge traces"
    long = judge_project_name("p" * 200)
    assert len(long) == 200 and long.endswith(" · judge traces")
