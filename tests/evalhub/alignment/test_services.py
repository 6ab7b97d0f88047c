"""The alignment workspace's services: a draft run over the items people labelled with the
fake judge, the comparison with the current version, saving, golden examples, bad input."""

from __future__ import annotations

import pytest

from annotations.datasets.models import Dataset
from evalhub.alignment.models import AlignmentItem, AlignmentRun, AlignmentStatus
from evalhub.alignment.selectors import BROKEN, FIXED, alignment_comparison
from evalhub.alignment.services import (
    AlignmentInvalid,
    alignment_golden_dataset,
    alignment_run_create,
    alignment_run_work,
    alignment_save,
)
from tests import factories
from tests.evalhub.alignment.factories import CURRENT, DRAFT_TEMPLATE, PEOPLE, draft
from tests.evalhub.calibration.helpers import labelled_spans, oracle_reply
from tests.evalhub.tasks.factories import JUDGE, judge

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def labelled(provider):  # type: ignore[no-untyped-def]
    evaluator = judge("Correctness", provider_id=provider.pk)
    labelled_spans([(h, c, 1) for h, c in zip(PEOPLE, CURRENT, strict=True)], name="Correctness")
    return evaluator


def test_a_draft_is_run_and_compared_with_the_current_version(labelled, provider, fake_openai):
    # The draft agrees with people on 9 of 10: wrong on question 0 only.
    answers = {f"question {i}": label for i, label in enumerate(PEOPLE)} | {
        "question 0": "incorrect"
    }
    fake_openai.reply = oracle_reply(answers, default="correct")
    run = alignment_run_create(
        evaluator=labelled,
        project=factories.project(),
        draft=draft(provider_id=provider.pk),
    )
    assert (run.status, run.total, run.base_version.number) == ("queued", 10, 1)
    assert alignment_run_work(run_id=run.pk, concurrency=4) == "completed"
    run.refresh_from_db()
    assert (run.status, run.done, run.errored) == (AlignmentStatus.COMPLETED, 10, 0)
    assert run.prompt_tokens > 0
    assert all("Judge strictly" in body["messages"][-1]["content"] for body in fake_openai.bodies)
    comparison = alignment_comparison(run=run)
    assert comparison.both == 10
    assert comparison.current.accuracy == pytest.approx(0.6)
    assert comparison.draft.accuracy == pytest.approx(0.9)
    assert comparison.better is True
    assert comparison.flips[FIXED] == 4 and comparison.flips[BROKEN] == 1
    assert [kind for kind, _ in comparison.flipped] == [FIXED] * 4 + [BROKEN]
    # A redelivered message changes nothing: the run is finished.
    assert alignment_run_work(run_id=run.pk) == "skipped"
    assert len(fake_openai.requests) == 10


def test_saving_the_draft_makes_the_next_version(labelled, provider, fake_openai):
    run = alignment_run_create(
        evaluator=labelled, project=factories.project(), draft=draft(provider_id=provider.pk)
    )
    with pytest.raises(AlignmentInvalid, match="completed"):
        alignment_save(run=run)
    alignment_run_work(run_id=run.pk)
    version = alignment_save(run=AlignmentRun.objects.get(pk=run.pk))
    assert version.number == 2 and version.config["template"] == DRAFT_TEMPLATE
    assert AlignmentRun.objects.get(pk=run.pk).saved_version == version
    assert labelled.versions.count() == 2


def test_people_who_disagree_without_a_majority_are_left_out(provider, fake_openai):
    evaluator = judge("Tone", provider_id=provider.pk)
    (span,) = labelled_spans([("polite", "polite", 1)], name="Tone", person="al")
    labelled_spans([("rude", None, 1)], name="Tone", person="bo")  # another item
    from annotations.store.services import AnnotationInput, annotations_upsert

    annotations_upsert(
        items=[AnnotationInput("SPAN", span.span_id, "Tone", label="rude", identifier="bo")]
    )
    run = alignment_run_create(
        evaluator=evaluator,
        project=factories.project(),
        draft=draft(provider_id=provider.pk, choices=[{"label": "polite"}, {"label": "rude"}]),
    )
    assert (run.total, run.skipped) == (1, 1)
    item = AlignmentItem.objects.get(run=run)
    assert (item.human_label, item.current_label) == ("rude", None)


def test_golden_examples_carry_the_peoples_labels(labelled, provider, fake_openai):
    run = alignment_run_create(
        evaluator=labelled, project=factories.project(), draft=draft(provider_id=provider.pk)
    )
    added = alignment_golden_dataset(run=run, name="golden correctness")
    assert (added.added, added.created) == (10, True)
    examples = Dataset.objects.get(name="golden correctness").examples.order_by("id")
    assert [e.expected_output for e in examples] == PEOPLE
    assert examples[0].labels["Correctness"]["label"] == "correct"
    assert examples[0].labels["eval.Correctness"]["label"] == "correct"
    assert alignment_golden_dataset(run=run, name="golden correctness").skipped == 10


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"draft": "not an object"}, "draft"),
        ({"draft": {**JUDGE, "template": ""}}, "draft"),
        (
            {
                "draft": {
                    "kind": "CODE",
                    "check": "contains_keywords",
                    "params": {"keywords": ["x"]},
                }
            },
            "draft",
        ),
        ({"draft": {**JUDGE, "provider_id": 999999}}, "draft"),
        ({"max_items": 0}, "max_items"),
        ({"max_items": 10**6}, "max_items"),
    ],
)
def test_bad_input_names_the_field_and_writes_nothing(labelled, changes, field):
    arguments = {"evaluator": labelled, "project": factories.project(), "draft": draft()} | changes
    with pytest.raises(AlignmentInvalid) as caught:
        alignment_run_create(**arguments)
    assert caught.value.field == field
    assert not AlignmentRun.objects.exists()


def test_a_project_nobody_labelled_is_refused(labelled):
    with pytest.raises(AlignmentInvalid, match="nobody labelled") as caught:
        alignment_run_create(evaluator=labelled, project=factories.project("empty"), draft=draft())
    assert caught.value.field == "project"


def test_a_draft_run_stops_at_the_evaluators_budget(labelled, provider, fake_openai):
    from evalhub.budgets.services import budget_create

    budget_create(scope="evaluator", evaluator=labelled, period="day", unit="tokens", limit=1)
    run = alignment_run_create(
        evaluator=labelled, project=factories.project(), draft=draft(provider_id=provider.pk)
    )
    assert alignment_run_work(run_id=run.pk, concurrency=1) == "failed"
    run.refresh_from_db()
    assert "budget of evaluator Correctness is reached" in run.error
    assert (run.done, len(fake_openai.requests)) == (1, 1)  # the one call in flight
