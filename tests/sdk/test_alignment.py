"""``client.alignment`` over HTTP: a draft run on Celery (eager), its comparison, its items as
a DataFrame, save, golden dataset, and errors."""

from __future__ import annotations

import pytest
from evalhub_client import NotFoundError, ValidationError

from evalhub.providers.services import provider_create
from tests.evalhub.calibration.helpers import labelled_spans, oracle_reply
from tests.evalhub.fake_openai import VALID_KEY, fake_openai  # noqa: F401
from tests.evalhub.tasks.factories import JUDGE, judge

PEOPLE = ["correct", "incorrect", "incorrect", "correct"]


def test_a_draft_run_compared_saved_and_copied(client, fake_openai, celery_eager):  # noqa: F811
    provider = provider_create(
        name="fake", kind="compatible", base_url=fake_openai.base_url, api_key=VALID_KEY,
        default_model="judge-small", requests_per_minute=0, timeout_seconds=5,
    )  # fmt: skip
    judge("Correctness", provider_id=provider.pk)
    labelled_spans([(h, "correct", 1) for h in PEOPLE])
    fake_openai.reply = oracle_reply(
        {f"question {i}": label for i, label in enumerate(PEOPLE)}, default="correct"
    )
    draft = {**JUDGE, "provider_id": provider.pk, "template": JUDGE["template"] + " Strictly."}
    estimate = client.alignment.estimate("Correctness", project="default", draft=draft)
    assert (estimate["items"], estimate["judge_calls"]) == (4, 4) and estimate["tokens"] > 0
    run = client.alignment.create("Correctness", project="default", draft=draft)
    assert run["total"] == 4 and run["base_version"] == 1
    done = client.alignment.wait(run, timeout=30, poll=0.2)
    assert done["status"] == "completed"
    comparison = done["comparison"]
    assert comparison["better"] is True and comparison["flips"]["fixed"] == 2
    assert comparison["current"]["accuracy"] == 0.5 and comparison["draft"]["accuracy"] == 1.0
    items = client.alignment.items(run)
    assert list(items["flip"].fillna("-")) == ["-", "fixed", "fixed", "-"]
    assert (items["draft_label"] == items["human_label"]).all()
    assert client.alignment.save(run) == 2
    golden = client.alignment.golden_dataset(run, "golden")
    assert (golden["added"], golden["created"]) == (4, True)
    assert [r["id"] for r in client.alignment.list("Correctness")] == [run["id"]]
    assert client.alignment.resume(run) is False  # completed: nothing to send


def test_errors_name_the_field(client):
    judge("Correctness")
    labelled_spans([("correct", "correct", 1)])
    with pytest.raises(NotFoundError):
        client.alignment.create("nobody", project="default", draft=JUDGE)
    with pytest.raises(NotFoundError):
        client.alignment.create("Correctness", project="no such project", draft=JUDGE)
    with pytest.raises(ValidationError, match="draft"):
        client.alignment.create("Correctness", project="default", draft={"kind": "LLM"})
    with pytest.raises(ValidationError, match="max_items"):
        client.alignment.create("Correctness", project="default", draft=JUDGE, max_items=0)
    with pytest.raises(NotFoundError):
        client.alignment.get(424242)
    with pytest.raises(NotFoundError):
        client.alignment.resume(424242)
