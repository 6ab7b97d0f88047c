"""A document check in an online task: one result per retrieved document of each retriever
span, stored on the document (span + position) beside the span's own result."""

from datetime import timedelta

import pytest
from django.utils import timezone

from annotations.models import Annotation
from evalhub.evaluators.checks import CheckError, CodeInput, check_run, params_validate
from evalhub.evaluators.services import evaluator_create
from evalhub.tasks.backfill import run_backfill_create
from evalhub.tasks.engine import run_work
from evalhub.tasks.models import RunStatus
from tests import factories
from tests.evalhub.tasks.factories import make_task

pytestmark = pytest.mark.django_db

DOCUMENTS = ("The refund policy gives 30 days.", "Shipping is free.", "What hats do we sell?")


@pytest.fixture(autouse=True)
def _no_dispatch(monkeypatch):
    monkeypatch.setattr("evalhub.tasks.runs.run_dispatch", lambda run_id: None)


def test_a_task_writes_one_result_per_retrieved_document(provider, fast_retry):
    base = timezone.now() - timedelta(days=3)
    _root, retriever, _llm = factories.rag_trace(documents=DOCUMENTS, start=base)
    evaluator = evaluator_create(
        name="relevance",
        config={"kind": "CODE", "check": "document_relevance", "params": {"threshold": 0.5}},
    )
    task = make_task(evaluator, filter="span_kind = 'RETRIEVER'", continuous=False)
    run = run_backfill_create(task=task, start=base - timedelta(hours=1), end=timezone.now())
    assert run_work(run_id=run.pk, worker="test", retry=fast_retry) == "finished"
    run.refresh_from_db()
    assert (run.status, run.succeeded) == (RunStatus.COMPLETED, 1)

    documents = {
        a.document_position: (a.label, a.score)
        for a in Annotation.objects.filter(target_kind="DOCUMENT", span=retriever)
    }
    assert documents == {0: ("relevant", 0.75), 1: ("irrelevant", 0.0), 2: ("irrelevant", 0.25)}
    span_result = Annotation.objects.get(target_kind="SPAN", span=retriever, name="relevance")
    assert (span_result.label, span_result.score) == ("relevant", round(1 / 3, 4))
    assert span_result.explanation == "1 of 3 documents relevant"
    assert {a.source for a in Annotation.objects.all()} == {"TASK"}
    assert {a.metadata["run_id"] for a in Annotation.objects.all()} == {run.pk}

    # Run again (a new backfill): the same rows are updated, not duplicated.
    again = run_backfill_create(task=task, start=base - timedelta(hours=1), end=timezone.now())
    run_work(run_id=again.pk, worker="test", retry=fast_retry)
    assert Annotation.objects.filter(target_kind="DOCUMENT").count() == 3


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (CodeInput(input="refund policy", output=None, reference=None), "no retrieved documents"),
        (
            CodeInput(input="a b", output=None, reference=None, documents=("x",)),
            "has no words",
        ),
        (CodeInput(input=None, output=None, reference=None, documents=("x",)), "has no input"),
    ],
)
def test_the_check_refuses_what_it_cannot_judge(data, message):
    with pytest.raises(CheckError) as error:
        check_run("document_relevance", data, params_validate("document_relevance", {}))
    assert message in str(error.value)


def test_positions_are_kept_for_documents_without_content():
    outcome = check_run(
        "document_relevance",
        CodeInput(
            input="refund policy", output=None, reference=None, documents=("", "refund policy")
        ),
        params_validate("document_relevance", {"threshold": 1}),
    )
    assert [(d.label, d.score) for d in outcome.documents] == [
        ("irrelevant", 0.0),
        ("relevant", 1.0),
    ]
    with pytest.raises(ValueError, match="threshold"):
        params_validate("document_relevance", {"threshold": 2})
