"""Shadow versions with the real engine and the fake judge: a task's runs evaluate the
candidate beside the active version, its results go to their own table only; promote, discard,
and the input they refuse."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from annotations.datasets.upload import UploadRow, dataset_upload
from annotations.datasets.versions import ExampleContent
from annotations.models import Annotation
from evalhub.evaluators.services import evaluator_create
from evalhub.experiments.task_target import dataset_task_save
from evalhub.shadow.models import ShadowResult, ShadowStatus
from evalhub.shadow.selectors import shadow_comparison
from evalhub.shadow.services import (
    ShadowInvalid,
    shadow_discard,
    shadow_promote,
    shadow_start,
    shadows_run_config,
)
from evalhub.tasks.continuous import continuous_run_plan
from evalhub.tasks.engine import run_work
from tests import factories
from tests.evalhub.shadow.helpers import CANDIDATE, STRICT, strict_reply
from tests.evalhub.tasks.factories import JUDGE, code_check, judge, make_task

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_dispatch(monkeypatch):
    monkeypatch.setattr("evalhub.tasks.runs.run_dispatch", lambda run_id: None)


def _run_once(task, fast_retry):
    run = continuous_run_plan(task_id=task.pk, now=timezone.now() + timedelta(seconds=1))
    assert run is not None
    assert run_work(run_id=run.pk, worker="test", retry=fast_retry) == "finished"
    run.refresh_from_db()
    return run


@pytest.fixture
def task(provider, fake_openai):
    fake_openai.reply = strict_reply()
    return make_task(judge(provider_id=provider.pk), filter="span_kind = 'LLM'")


def test_the_candidate_runs_beside_the_active_version_and_writes_apart(
    task, provider, fake_openai, fast_retry
):
    evaluator = task.task_evaluators.get().evaluator
    shadow = shadow_start(task=task, evaluator=evaluator, candidate={**CANDIDATE})
    spans = [factories.trace()[2], factories.trace()[2]]
    run = _run_once(task, fast_retry)
    # Two items, each called twice: the active version and the candidate.
    assert len(fake_openai.requests) == 4
    assert sum(STRICT in str(b["messages"]) for b in fake_openai.bodies) == 2
    # The annotations are the active version's only.
    results = Annotation.objects.filter(name="correctness")
    assert sorted((a.span.span_id, a.label, a.metadata["version"]) for a in results) == sorted(
        (s.span_id, "correct", 1) for s in spans
    )
    # The candidate's are in the shadow's table, linked to the spans.
    rows = ShadowResult.objects.filter(shadow=shadow)
    assert sorted((r.span_id, r.label, r.run_id) for r in rows) == sorted(
        (s.span_id, "incorrect", run.pk) for s in spans
    )
    assert {r.trace_id for r in rows} == {s.trace.trace_id for s in spans}
    # The item list and the counts are the active version's; the spend is both.
    assert (run.evaluated, run.succeeded) == (2, 2)
    assert all(len(item.results) == 1 for item in run.items.all())
    assert run.prompt_tokens == 4 * 20 and run.completion_tokens == 4 * 5


def test_the_comparison_counts_both_sides_and_people(task, provider, fake_openai, fast_retry):
    evaluator = task.task_evaluators.get().evaluator
    fake_openai.reply = strict_reply({"question 0": "correct", "question 1": "correct"})
    shadow = shadow_start(task=task, evaluator=evaluator, candidate={**CANDIDATE})
    start = factories.BASE_TIME
    spans = [
        factories.trace(start=start + timedelta(hours=i), input_value=f"question {i}")[2]
        for i in range(4)
    ]
    _run_once(task, fast_retry)
    # People: 0 correct, 1 incorrect, 2 incorrect; 3 unlabelled.
    from annotations.store.services import AnnotationInput, annotations_upsert

    annotations_upsert(
        items=[
            AnnotationInput("SPAN", spans[i].span_id, "correctness", label=label)
            for i, label in enumerate(["correct", "incorrect", "incorrect"])
        ]
    )
    comparison = shadow_comparison(shadow=shadow)
    assert (comparison.judged, comparison.errored) == (4, 0)
    assert comparison.between.pairs == 4
    assert comparison.between.accuracy == pytest.approx(0.5)
    # With people: the active version right on 1 of 3, the candidate on 2 of 3.
    assert comparison.active.pairs == comparison.candidate.pairs == 3
    assert comparison.active.accuracy == pytest.approx(1 / 3)
    assert comparison.candidate.accuracy == pytest.approx(2 / 3)
    assert comparison.better is True
    assert comparison.flips == {"fixed": 1, "broken": 0, "changed": 1}
    assert [i.result.span_id for i in comparison.flipped] == [spans[2].span_id, spans[3].span_id]
    assert len(comparison.buckets) == 4
    assert [dict(b.candidate) for b in comparison.buckets] == [
        {"correct": 1},
        {"correct": 1},
        {"incorrect": 1},
        {"incorrect": 1},
    ]
    assert all(dict(b.active) == {"correct": 1} for b in comparison.buckets)


def test_promote_makes_the_candidate_the_active_version(task, provider, fake_openai, fast_retry):
    evaluator = task.task_evaluators.get().evaluator
    shadow = shadow_start(task=task, evaluator=evaluator, candidate={**CANDIDATE})
    old = factories.trace()[2]
    _run_once(task, fast_retry)
    version = shadow_promote(shadow=shadow)
    shadow.refresh_from_db()
    assert (shadow.status, shadow.promoted_version, version.number) == ("promoted", version, 2)
    assert version.config["template"] == CANDIDATE["template"]
    new = factories.trace()[2]
    _run_once(task, fast_retry)
    labels = {
        a.span.span_id: (a.label, a.metadata["version"])
        for a in Annotation.objects.filter(name="correctness")
    }
    # The past result still names v1; the new one is v2's (the candidate's answer).
    assert labels == {old.span_id: ("correct", 1), new.span_id: ("incorrect", 2)}
    # No shadow runs any more: only the one item's call in the last run, and it is kept.
    assert ShadowResult.objects.filter(shadow=shadow).count() == 1
    with pytest.raises(ShadowInvalid, match="promoted already"):
        shadow_discard(shadow=shadow)


def test_discard_removes_the_results_and_stops_the_shadow(task, provider, fake_openai, fast_retry):
    evaluator = task.task_evaluators.get().evaluator
    shadow = shadow_start(task=task, evaluator=evaluator, candidate={**CANDIDATE})
    factories.trace()
    _run_once(task, fast_retry)
    assert shadow_discard(shadow=shadow) == 1
    shadow.refresh_from_db()
    assert shadow.status == ShadowStatus.DISCARDED and not ShadowResult.objects.exists()
    fake_openai.requests.clear()
    factories.trace()
    _run_once(task, fast_retry)
    assert len(fake_openai.requests) == 1  # the active version only
    assert evaluator.versions.count() == 1
    # A new shadow may start once the last one is done.
    assert shadow_start(task=task, evaluator=evaluator, candidate={**CANDIDATE}).is_running


def test_bad_input_is_refused_naming_the_field(task, provider):
    evaluator = task.task_evaluators.get().evaluator
    with pytest.raises(ShadowInvalid) as exc:
        shadow_start(task=task, evaluator=code_check(), candidate={**CANDIDATE})
    assert exc.value.field == "evaluator"
    with pytest.raises(ShadowInvalid, match="active version's definition"):
        shadow_start(
            task=task, evaluator=evaluator, candidate={**JUDGE, "provider_id": provider.pk}
        )
    with pytest.raises(ShadowInvalid) as exc:
        shadow_start(task=task, evaluator=evaluator, candidate={**JUDGE, "template": ""})
    assert exc.value.field == "candidate"
    with pytest.raises(ShadowInvalid, match="kind"):
        shadow_start(
            task=task,
            evaluator=evaluator,
            candidate={"kind": "CODE", "check": "contains_keywords", "params": {"keywords": ["a"]}},
        )
    with pytest.raises(ShadowInvalid, match="candidate definition or an alignment run"):
        shadow_start(task=task, evaluator=evaluator)
    shadow_start(task=task, evaluator=evaluator, candidate={**CANDIDATE})
    with pytest.raises(ShadowInvalid, match="already has a running shadow"):
        shadow_start(task=task, evaluator=evaluator, candidate={**CANDIDATE, "template": "{input}"})


def test_a_run_in_flight_drops_the_results_of_a_shadow_discarded_meanwhile(
    task, provider, fake_openai, fast_retry
):
    evaluator = task.task_evaluators.get().evaluator
    shadow = shadow_start(task=task, evaluator=evaluator, candidate={**CANDIDATE})
    factories.trace()
    run = continuous_run_plan(task_id=task.pk, now=timezone.now() + timedelta(seconds=1))
    assert [s["shadow_id"] for s in run.config["shadows"]] == [shadow.pk]
    assert shadow_discard(shadow=shadow) == 0  # before the run's results are written
    assert run_work(run_id=run.pk, worker="test", retry=fast_retry) == "finished"
    assert len(fake_openai.requests) == 2  # the run kept its settings: both were called
    assert not ShadowResult.objects.exists()  # but the discarded shadow's result is dropped
    assert Annotation.objects.filter(name="correctness").count() == 1


def test_a_dataset_task_has_no_shadow():
    uploaded = dataset_upload(
        name="qa", rows=[UploadRow(ExampleContent({"question": "2+2"}, {"answer": "4"}))]
    )
    exact = evaluator_create(
        name="exact", config={"kind": "CODE", "check": "exact_match", "params": {}}
    )
    task = dataset_task_save(dataset=uploaded.dataset, name="scores", evaluators=[exact])
    with pytest.raises(ShadowInvalid) as refused:
        shadow_start(task=task, evaluator=exact, candidate={"kind": "CODE"})
    assert refused.value.field == "task"
    assert shadows_run_config(task=task, config={"evaluators": []}) == {}
