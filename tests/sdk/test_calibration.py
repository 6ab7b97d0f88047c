"""``client.calibration``: an evaluator's agreement with people as DataFrames, over HTTP."""

from __future__ import annotations

import pandas as pd
import pytest
from evalhub_client import NotFoundError, ValidationError

from tests.evalhub.calibration.helpers import labelled_spans
from tests.evalhub.tasks.factories import judge


def test_metrics_and_labels_as_data_frames(client):
    judge("Correctness")
    labelled_spans(
        [("good", "good", 1), ("bad", "good", 1), ("bad", "bad", 2), ("good", "good", 2)]
    )
    metrics = client.calibration.metrics("Correctness", project="default", bucket="week")
    overall = metrics[metrics["bucket_start"].isna()].set_index("version")
    assert overall.loc[2, "pairs"] == 2 and overall.loc[2, "kappa"] == pytest.approx(1.0)
    assert overall.loc[1, "accuracy"] == pytest.approx(0.5)
    assert overall.loc[1, "accuracy_low"] < 0.5 < overall.loc[1, "accuracy_high"]
    assert isinstance(metrics["bucket_start"].dtype, pd.DatetimeTZDtype)
    labels = client.calibration.labels("Correctness")
    good_v1 = labels[(labels["version"] == 1) & labels["bucket_start"].isna()]
    assert good_v1.set_index("label").loc["good", "recall"] == pytest.approx(1.0)
    raw = client.calibration.get("Correctness")
    assert raw["versions"][0]["overall"]["matrix"] == [[1, 0], [0, 1]]


def test_errors_name_the_problem(client):
    judge("Correctness")
    with pytest.raises(NotFoundError):
        client.calibration.metrics("nobody")
    with pytest.raises(ValidationError):
        client.calibration.metrics("Correctness", bucket="fortnight")
    empty = client.calibration.metrics("Correctness")
    assert list(empty.columns)[:4] == ["evaluator", "version", "bucket_start", "pairs"]
    assert empty.empty


def test_a_backfill_estimate_before_the_backfill(client):
    from evalhub.providers.services import provider_create
    from tests import factories
    from tests.evalhub.tasks.factories import make_task

    provider_create(
        name="nowhere",
        kind="compatible",
        base_url="http://127.0.0.1:9/v1",
        api_key="sk-x",
        default_model="judge-small",
        requests_per_minute=0,
    )  # fmt: skip  (estimating calls no model)
    evaluator = judge("Correctness")
    for _ in range(3):
        factories.trace()
    task = make_task(evaluator, filter="span_kind = 'LLM'")
    estimate = client.calibration.backfill_estimate(task.pk, start_time="2026-11-01T00:00:00Z")
    assert (estimate["items"], estimate["judge_calls"], estimate["capped"]) == (3, 3, False)
    with pytest.raises(ValidationError, match="max_spans"):
        client.calibration.backfill_estimate(task.pk, start_time="2026-11-01", max_spans=0)


def test_budgets_through_the_client(client):
    judge("Correctness")
    created = client.budgets.create(
        scope="evaluator", evaluator="Correctness", period="day", unit="usd", limit=2.5
    )
    frame = client.budgets.list()
    assert list(frame["target"]) == ["evaluator Correctness"] and frame["spent"].sum() == 0
    with pytest.raises(ValidationError, match="period"):
        client.budgets.create(scope="global", period="year", unit="usd", limit=1)
    client.budgets.delete(created["id"])
    assert client.budgets.list().empty


def test_a_tasks_sampling_and_routing_set_read_and_cleared(client):
    from evalhub_client import NotFoundError as Missing

    from annotations.queues.services import queue_create
    from annotations.rubrics.services import annotation_config_create
    from evalhub.providers.services import provider_create
    from tests.evalhub.tasks.factories import make_task

    provider = provider_create(
        name="nowhere", kind="compatible", base_url="http://127.0.0.1:9/v1", api_key="sk-x",
        default_model="judge-small", requests_per_minute=0,
    )  # fmt: skip
    task = make_task(judge("Correctness", provider_id=provider.pk))
    config = annotation_config_create(
        name="Correctness", kind="CATEGORICAL", values=[{"label": "a"}]
    )
    queue = queue_create(name="calibration", item_kind="SPAN", configs=[config])
    assert client.calibration.sampling(task.pk)["enabled"] is False
    sampling = client.calibration.set_sampling(
        task.pk, queue_id=queue.pk, rate_percent=2, stratify=False
    )
    assert (sampling["enabled"], sampling["rate_percent"], sampling["stratify"]) == (True, 2, False)
    routing = client.calibration.set_routing(task.pk, queue_id=queue.pk, people=True)
    assert (routing["judge"], routing["people"], routing["routed"]) == (True, True, 0)
    assert client.calibration.routing(task.pk)["queue_id"] == queue.pk
    with pytest.raises(ValidationError) as bad:
        client.calibration.set_routing(task.pk, queue_id=queue.pk, judge=False)
    assert "judge" in str(bad.value)
    with pytest.raises(Missing):
        client.calibration.set_routing(task.pk, queue_id=99999)
    client.calibration.clear_routing(task.pk)
    client.calibration.clear_sampling(task.pk)
    assert client.calibration.routing(task.pk)["enabled"] is False
    assert client.calibration.sampling(task.pk)["enabled"] is False
