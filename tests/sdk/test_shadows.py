"""``client.shadows`` over HTTP: start a shadow, a task run evaluates it (the real engine, the
fake judge), its comparison and items as DataFrames, promote, discard, and errors."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from evalhub_client import EvalHubError, NotFoundError, ValidationError

from annotations.store.services import AnnotationInput, annotations_upsert
from evalhub.providers.services import provider_create
from evalhub.tasks.continuous import continuous_run_plan
from evalhub.tasks.engine import run_work
from tests import factories
from tests.evalhub.fake_openai import VALID_KEY, fake_openai  # noqa: F401
from tests.evalhub.shadow.helpers import CANDIDATE, strict_reply
from tests.evalhub.tasks.factories import JUDGE, judge, make_task


@pytest.fixture(autouse=True)
def _no_dispatch(monkeypatch):
    """The run is worked here with ``run_work``: nothing goes to a broker."""
    monkeypatch.setattr("evalhub.tasks.runs.run_dispatch", lambda run_id: None)


def _task(fake_openai):  # noqa: F811
    provider = provider_create(
        name="fake", kind="compatible", base_url=fake_openai.base_url, api_key=VALID_KEY,
        default_model="judge-small", requests_per_minute=0, timeout_seconds=5,
    )  # fmt: skip
    fake_openai.reply = strict_reply({"question 0": "correct"})
    task = make_task(judge(provider_id=provider.pk), filter="span_kind = 'LLM'")
    return task, provider


def _run(task) -> None:
    run = continuous_run_plan(task_id=task.pk, now=timezone.now() + timedelta(seconds=1))
    assert run is not None and run_work(run_id=run.pk, worker="sdk-test") == "finished"


def test_a_shadow_started_compared_and_promoted(client, fake_openai):  # noqa: F811
    task, provider = _task(fake_openai)
    candidate = {**CANDIDATE, "provider_id": provider.pk}
    shadow = client.shadows.start(task.pk, "correctness", candidate=candidate)
    assert (shadow["status"], shadow["base_version"], shadow["results"]) == ("running", 1, 0)
    spans = [
        factories.trace(
            start=factories.BASE_TIME + timedelta(hours=i), input_value=f"question {i}"
        )[2]
        for i in range(3)
    ]
    _run(task)
    annotations_upsert(
        items=[AnnotationInput("SPAN", spans[1].span_id, "correctness", label="incorrect")]
    )
    comparison = client.shadows.comparison(shadow)
    assert comparison["judged"] == 3 and comparison["between"]["pairs"] == 3
    assert comparison["flips"] == {"fixed": 1, "broken": 0, "changed": 1}
    assert comparison["candidate"]["accuracy"] == 1.0 and comparison["active"]["accuracy"] == 0.0
    assert comparison["better"] is None or comparison["better"] is True
    items = client.shadows.items(shadow)
    assert sorted(items["candidate_label"]) == ["correct", "incorrect", "incorrect"]
    assert set(items["active_label"]) == {"correct"}
    assert set(items["span_id"]) == {s.span_id for s in spans}
    frame = client.shadows.distribution(shadow)
    counts = frame.groupby(["side", "label"])["count"].sum().to_dict()
    assert counts == {("active", "correct"): 3, ("candidate", "correct"): 1,
                      ("candidate", "incorrect"): 2}  # fmt: skip
    assert [s["id"] for s in client.shadows.list(task.pk)] == [shadow["id"]]
    assert client.shadows.promote(shadow) == 2
    assert client.shadows.get(shadow)["promoted_version"] == 2
    with pytest.raises(EvalHubError, match="promoted already"):
        client.shadows.discard(shadow)


def test_discard_and_errors_name_the_field(client, fake_openai):  # noqa: F811
    task, provider = _task(fake_openai)
    with pytest.raises(NotFoundError):
        client.shadows.start(424242, "correctness", candidate=CANDIDATE)
    with pytest.raises(ValidationError, match="evaluator"):
        client.shadows.start(task.pk, "nobody", candidate=CANDIDATE)
    with pytest.raises(ValidationError, match="candidate"):
        client.shadows.start(task.pk, "correctness", candidate={"kind": "LLM"})
    with pytest.raises(ValidationError, match="candidate"):
        client.shadows.start(
            task.pk, "correctness", candidate={**JUDGE, "provider_id": provider.pk}
        )
    with pytest.raises(ValidationError, match="alignment_id"):
        client.shadows.start(task.pk, "correctness", alignment_id=424242)
    shadow = client.shadows.start(task.pk, "correctness", candidate=CANDIDATE)
    with pytest.raises(EvalHubError, match="already has a running shadow"):
        client.shadows.start(task.pk, "correctness", candidate={**CANDIDATE, "template": "{input}"})
    factories.trace()
    _run(task)
    assert client.shadows.discard(shadow) == 1
    assert client.shadows.get(shadow)["status"] == "discarded"
    with pytest.raises(NotFoundError):
        client.shadows.comparison(424242)
