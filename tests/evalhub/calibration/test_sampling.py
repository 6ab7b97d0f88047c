"""Calibration sampling: a task with 5 % calibration sampling fills a labeling queue, stratified
by the judge's label; people label it; the judge's agreement appears with kappa and its
interval."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model

from annotations.queues.labelling import queue_item_next, queue_item_submit
from annotations.queues.models import LabelingQueueItem
from annotations.queues.services import queue_create
from annotations.rubrics.services import annotation_config_create
from evalhub.calibration.models import CalibrationSampling
from evalhub.calibration.sampling import (
    SamplingInvalid,
    calibration_sampling_set,
    stratified_choice,
)
from evalhub.calibration.selectors import evaluator_calibration
from evalhub.tasks.backfill import run_backfill_create
from evalhub.tasks.engine import run_work
from tests import factories
from tests.evalhub.calibration.helpers import oracle_reply
from tests.evalhub.tasks.factories import judge, make_task

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_stratified_choice_gives_every_label_its_share_deterministically():
    labels = ["pass"] * 95 + ["fail"] * 5
    strata: dict[str, list[int]] = {}
    chosen = stratified_choice(labels, strata, 5.0)
    picked = [labels[i] for i in chosen]
    # ceil(5 % of 95) = 5 passes, and the rare label still gets its first item.
    assert picked.count("pass") == 5 and picked.count("fail") == 1
    assert strata == {"pass": [95, 5], "fail": [5, 1]}
    assert stratified_choice(labels, {}, 5.0) == chosen  # the same results choose the same items
    # Over two batches the share is the same as over one.
    first: dict[str, list[int]] = {}
    stratified_choice(labels[:50], first, 5.0)
    stratified_choice(labels[50:], first, 5.0)
    assert first == strata


def test_a_task_fills_its_queue_people_label_it_and_agreement_appears(
    provider, fake_openai, fast_retry
):
    config = annotation_config_create(
        name="Correctness",
        kind="CATEGORICAL",
        values=[{"label": "correct", "score": 1}, {"label": "incorrect", "score": 0}],
    )
    queue = queue_create(name="calibration", item_kind="SPAN", configs=[config])
    evaluator = judge("Correctness", provider_id=provider.pk)
    for index in range(100):
        factories.trace(
            start=factories.BASE_TIME + timedelta(minutes=index), input_value=f"question {index}"
        )
    # The judge says "incorrect" to every 4th question.
    fake_openai.reply = oracle_reply(
        {f"question {i}": "incorrect" for i in range(0, 100, 4)}, default="correct"
    )
    task = make_task(evaluator, filter="span_kind = 'LLM'", continuous=False)
    calibration_sampling_set(task=task, queue=queue, rate_percent=5)
    run = run_backfill_create(task=task, start=factories.BASE_TIME - timedelta(days=1))
    assert run_work(run_id=run.pk, concurrency=4, retry=fast_retry) == "finished"

    items = list(LabelingQueueItem.objects.filter(queue=queue))
    # 75 "correct" → ceil(3.75) = 4; 25 "incorrect" → ceil(1.25) = 2.
    assert len(items) == 6
    assert CalibrationSampling.objects.get(task=task).strata == {
        "correct": [75, 4],
        "incorrect": [25, 2],
    }
    # People label them: they agree with the judge except on one "incorrect".
    person = get_user_model().objects.create_user("rita")
    disagreed = False
    while (item := queue_item_next(queue=queue, user=person)) is not None:
        judged = item.span.annotations.get(annotator_kind="LLM").label
        label = judged
        if judged == "incorrect" and not disagreed:
            label, disagreed = "correct", True
        queue_item_submit(item=item, user=person, answers={"Correctness": label})
    calibration = evaluator_calibration(project=factories.project(), name="Correctness")
    (version,) = calibration.versions
    assert version.overall.pairs == 6 and version.overall.accuracy == pytest.approx(5 / 6)
    assert version.overall.kappa is not None and version.overall.kappa_ci is not None
    assert version.overall.kappa_ci.low < version.overall.kappa < version.overall.kappa_ci.high


def test_a_queue_of_another_kind_or_a_bad_rate_is_refused(provider):
    config = annotation_config_create(name="Q", kind="CATEGORICAL", values=[{"label": "a"}])
    traces = queue_create(name="traces", item_kind="TRACE", configs=[config])
    spans = queue_create(name="spans", item_kind="SPAN", configs=[config])
    task = make_task(judge("Correctness", provider_id=provider.pk))
    with pytest.raises(SamplingInvalid) as caught:
        calibration_sampling_set(task=task, queue=traces, rate_percent=5)
    assert caught.value.field == "queue"
    for rate in (0, 101, "5", True):
        with pytest.raises(SamplingInvalid) as caught:
            calibration_sampling_set(task=task, queue=spans, rate_percent=rate)
        assert caught.value.field == "rate_percent"
    assert not CalibrationSampling.objects.exists()


def test_the_sampling_api(client, auth, provider):
    config = annotation_config_create(name="Q", kind="CATEGORICAL", values=[{"label": "a"}])
    queue = queue_create(name="spans", item_kind="SPAN", configs=[config])
    task = make_task(judge("Correctness", provider_id=provider.pk))
    url = f"/v1/tasks/{task.pk}/calibration-sampling"
    assert client.get(url, headers=auth).json()["enabled"] is False
    body = {"queue_id": queue.pk, "rate_percent": 2}
    answer = client.put(url, body, content_type="application/json", headers=auth).json()
    assert (answer["rate_percent"], answer["strata"]) == (2, {})
    bad = client.put(url, body | {"rate_percent": 0}, content_type="application/json", headers=auth)
    assert bad.status_code == 422 and "rate_percent" in bad.json()["detail"]
    gone = client.put(url, body | {"queue_id": 999}, content_type="application/json", headers=auth)
    assert gone.status_code == 404 and "queue_id" in gone.json()["detail"]
    assert client.get(url, headers=auth).json()["enabled"] is True
    assert client.delete(url, headers=auth).status_code == 204
    missing = client.get("/v1/tasks/99999/calibration-sampling", headers=auth)
    assert missing.status_code == 404
    assert not CalibrationSampling.objects.exists()
