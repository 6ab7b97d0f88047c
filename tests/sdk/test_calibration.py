"""``client.calibration``: an evaluator's agreement with people as DataFrames, over HTTP."""

from __future__ import annotations

import pandas as pd
import pytest
from evalhub_client import NotFoundError, ValidationError

from tests.evalhub.calibration.helpers import labelled_spans
from tests.evalhub.online_helpers import judge


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
