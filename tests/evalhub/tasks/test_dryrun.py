"""The task form's test run and previews (evalhub.tasks.dryrun): what a task would do on a few
recent items, with nothing written."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from annotations.models import Annotation
from evalhub.providers.services import provider_create
from evalhub.tasks.dryrun import evaluator_mappings, preview_span, skip_forecast, task_dry_run
from evalhub.tasks.models import TaskRun, TaskRunItem
from evalhub.tasks.sampling import in_sample
from evalhub.tasks.services import TaskEvaluatorInput, TaskInput
from tests import factories
from tests.evalhub.fake_openai import VALID_KEY
from tests.evalhub.tasks.factories import code_check, judge
from tracing.query import FilterError

pytestmark = pytest.mark.django_db


def _ago(**kwargs: float):
    return timezone.now() - timedelta(**kwargs)


def _input(*evaluators, variables=None, **fields) -> TaskInput:
    return TaskInput(
        name="draft",
        project=factories.project(),
        evaluators=[TaskEvaluatorInput(evaluator=e, variables=variables or {}) for e in evaluators],
        **fields,
    )


def _nothing_written() -> bool:
    return (
        Annotation.objects.count() == 0
        and TaskRun.objects.count() == 0
        and TaskRunItem.objects.count() == 0
    )


def test_dry_run_evaluates_the_five_newest_matching_spans_and_writes_nothing(provider, fake_openai):
    fake_openai.answer("correct", "It answers the question.")
    traces = [factories.trace(start=_ago(hours=i + 1)) for i in range(7)]
    items = task_dry_run(data=_input(judge(), filter="span_kind = 'LLM'"))
    newest_llm = [next(s for s in t if s.span_kind == "LLM").span_id for t in traces[:5]]
    assert [item.key for item in items] == newest_llm
    assert all(item.granularity == "span" and item.span is not None for item in items)
    results = [r for item in items for r in item.results]
    assert [(r.label, r.score, r.explanation, r.error) for r in results] == [
        ("correct", 1.0, "It answers the question.", None)
    ] * 5
    assert all(r.prompt_tokens and r.completion_tokens for r in results)
    assert len(fake_openai.requests) == 5
    assert _nothing_written()


def test_dry_run_gives_each_evaluator_its_result_or_its_error(provider, fake_openai):
    factories.trace(start=_ago(minutes=5))
    context_judge = judge(
        name="grounded",
        template="Context: {context}\nAnswer: {output}",
        variables={"context": "metadata.context"},
    )
    items = task_dry_run(data=_input(code_check(), context_judge, filter="name = 'llm'"), limit=5)
    assert len(items) == 1
    check, grounded = items[0].results
    assert (check.evaluator, check.label, check.error) == ("mentions_refund", "contains", None)
    assert grounded.evaluator == "grounded" and grounded.label is None
    assert "metadata.context is missing" in grounded.error
    assert grounded.skipped == "missing variable {context}: metadata.context has no value"
    assert fake_openai.requests == []  # nothing to ask the judge without its variable
    assert _nothing_written()


def test_dry_run_samples_like_the_task(provider, fake_openai):
    spans = [
        next(s for s in factories.trace(start=_ago(minutes=i + 1)) if s.span_kind == "LLM")
        for i in range(30)
    ]
    check = code_check()
    items = task_dry_run(data=_input(check, filter="span_kind = 'LLM'", sampling_rate=40), limit=5)
    in_order = [s.span_id for s in spans if in_sample(s.span_id, 40)]
    assert [item.key for item in items] == in_order[:5]
    assert task_dry_run(data=_input(check, sampling_rate=0)) == []


def test_dry_run_uses_the_task_mapping_and_llm_override(provider, fake_openai):
    other = provider_create(
        name="override",
        kind="compatible",
        base_url=fake_openai.base_url,
        api_key=VALID_KEY,
        default_model="judge-small",
        requests_per_minute=0,
        timeout_seconds=5,
    )
    factories.trace(start=_ago(minutes=1), metadata={"expected": "Within thirty days."})
    items = task_dry_run(
        data=_input(
            judge(),
            variables={"input": "metadata.expected"},
            filter="span_kind = 'LLM'",
            provider=other,
            model="judge-large",
        )
    )
    assert items[0].results[0].ok
    body = fake_openai.bodies[-1]
    assert body["model"] == "judge-large"
    assert "Question: Within thirty days." in body["messages"][-1]["content"]


def test_dry_run_of_traces_and_sessions_shows_the_root_span(provider, fake_openai):
    first = factories.trace(start=_ago(minutes=10), session_id="s-1", input_value="first turn")
    factories.trace(start=_ago(minutes=5), session_id="s-1", input_value="second turn")
    evaluator = judge()
    items = task_dry_run(data=_input(evaluator, granularity="trace"))
    assert len(items) == 2 and items[1].key == first[0].trace.trace_id
    assert items[1].span.span_id == first[0].span_id  # the root span
    sessions = task_dry_run(data=_input(evaluator, granularity="session"))
    assert [item.key for item in sessions] == ["s-1"]
    assert sessions[0].span.span_id == first[0].span_id  # the first trace's root
    assert "first turn" in fake_openai.bodies[-1]["messages"][-1]["content"]
    assert _nothing_written()


def test_dry_run_looks_further_back_when_nothing_recent_matches(provider, fake_openai):
    old = factories.trace(start=_ago(days=40))
    items = task_dry_run(data=_input(code_check(), filter="span_kind = 'AGENT'"))
    assert [item.key for item in items] == [old[0].span_id]


def test_dry_run_with_nothing_matching_or_a_bad_filter(provider):
    factories.trace(start=_ago(minutes=1))
    check = code_check()
    assert task_dry_run(data=_input(check, filter="name = 'nothing'")) == []
    with pytest.raises(FilterError) as excinfo:
        task_dry_run(data=_input(check, filter="latncy_ms > 3"))
    assert excinfo.value.position == 1


def test_preview_span_is_the_given_span_or_the_newest_match(db):
    older = factories.trace(start=_ago(hours=2))
    newer = factories.trace(start=_ago(hours=1))
    project = factories.project()
    assert (
        preview_span(project=project, granularity="span", filter_text="span_kind = 'LLM'")
        == (newer[2])
    )
    assert preview_span(project=project, granularity="span", span_id=older[1].span_id) == older[1]
    # For traces, the span given stands for its trace: the trace's root span.
    assert preview_span(project=project, granularity="trace", span_id=older[2].span_id) == older[0]
    assert preview_span(project=project, granularity="span", span_id="nope") is None
    other = factories.project("other")
    assert preview_span(project=other, granularity="span") is None


def test_evaluator_mappings_show_sources_and_values(db):
    span = factories.trace(start=_ago(minutes=1), metadata={"expected": "30 days"})[0]
    evaluator = judge()
    [mapping] = evaluator_mappings(
        entries=[TaskEvaluatorInput(evaluator=evaluator, variables={"input": "metadata.expected"})],
        span=span,
    )
    rows = {row.name: row for row in mapping.rows}
    assert mapping.error is None
    assert (rows["input"].source, rows["input"].default, rows["input"].changed) == (
        "metadata.expected",
        "input",
        True,
    )
    assert rows["input"].value == "30 days"
    assert rows["output"].value == "Refunds are accepted within 30 days."
    assert not rows["output"].changed
    [bad] = evaluator_mappings(
        entries=[TaskEvaluatorInput(evaluator=evaluator, variables={"input": "nonsense"})],
        span=span,
    )
    assert "unknown source 'nonsense'" in bad.error
    assert [row.source for row in bad.rows] == ["nonsense", "output"]


def test_skip_forecast_counts_the_recent_matches_a_run_would_skip_and_why(db):
    for hours in range(1, 4):
        factories.trace(start=_ago(hours=hours))
    for hours in range(4, 6):
        factories.ingest(
            [
                factories.span_record(
                    kind="LLM", name="llm", output_value=None, start=_ago(hours=hours)
                )
            ]
        )
    correctness = judge()
    data = _input(correctness, filter="span_kind = 'LLM'")
    forecast = skip_forecast(
        project=data.project, granularity="span", filter_text=data.filter, entries=data.evaluators
    )
    assert (forecast.checked, forecast.skipped) == (5, 2)
    assert forecast.reasons == [
        ("correctness", "missing variable {output}: output has no value", 2)
    ]
    # A code evaluator beside it still runs on them: nothing is skipped as a whole.
    both = _input(correctness, code_check(), filter="span_kind = 'LLM'")
    mixed = skip_forecast(
        project=both.project, granularity="span", filter_text=both.filter, entries=both.evaluators
    )
    assert mixed.skipped == 0 and mixed.reasons == forecast.reasons
    # Mapped to a source every span has: nothing to skip.
    mapped = _input(correctness, variables={"output": "name"}, filter="span_kind = 'LLM'")
    none = skip_forecast(
        project=mapped.project,
        granularity="span",
        filter_text=mapped.filter,
        entries=mapped.evaluators,
    )
    assert (none.skipped, none.reasons) == (0, [])
    assert _nothing_written()
