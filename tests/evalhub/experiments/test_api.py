"""The experiments API refuses bad input with a 4xx naming the field, and writes nothing."""

from __future__ import annotations

import pytest

from annotations.datasets.upload import UploadRow, dataset_upload
from annotations.datasets.versions import ExampleContent, version_examples
from evalhub.experiments.models import ExperimentEvaluation, ExperimentRun
from evalhub.experiments.services import experiment_create

pytestmark = pytest.mark.django_db

T = "2026-12-07T10:00:00+00:00"


@pytest.fixture
def experiment():
    rows = [UploadRow(ExampleContent({"q": str(i)}, {"a": str(i)})) for i in range(2)]
    uploaded = dataset_upload(name="d", rows=rows)
    return experiment_create(dataset=uploaded.dataset, repetitions=2)


def _post(client, auth, url, body):
    return client.post(url, body, content_type="application/json", headers=auth)


def test_bad_runs(client, auth, experiment):
    url = f"/v1/experiments/{experiment.pk}/runs"
    example = str(version_examples(version=experiment.dataset_version).first().example_id)
    other = dataset_upload(name="other", rows=[UploadRow(ExampleContent({"q": "x"}, {}))])
    foreign = str(version_examples(version=other.version).first().example_id)
    cases = [
        ({"dataset_example_id": "nope"}, 404, "dataset_example_id: example 'nope' not found"),
        ({"dataset_example_id": foreign}, 404, f"dataset_example_id: example {foreign} is not in"),
        (
            {"dataset_example_id": example, "repetition_number": 3},
            400,
            "repetition_number: must be between 1 and 2",
        ),
        (
            {"dataset_example_id": example, "end_time": "2026-12-07T09:00:00Z"},
            400,
            "end_time: is before start_time",
        ),
        (
            {"dataset_example_id": example, "start_time": "yesterday"},
            400,
            "start_time: must be an ISO 8601 time",
        ),
    ]
    for body, status, detail in cases:
        response = _post(client, auth, url, {"start_time": T, "end_time": T, **body})
        assert response.status_code == status, (body, response.content)
        assert response.json()["detail"].startswith(detail)
    assert not ExperimentRun.objects.exists()

    ok = _post(
        client,
        auth,
        url,
        {"dataset_example_id": example, "output": {"x": 1}, "start_time": T, "end_time": T},
    )
    assert ok.status_code == 200
    again = _post(
        client, auth, url, {"dataset_example_id": example, "start_time": T, "end_time": T}
    )
    assert again.status_code == 409
    missing = client.get(f"/v1/experiments/{experiment.pk}/incomplete-runs", headers=auth).json()
    assert [len(i["repetition_numbers"]) for i in missing["data"]] == [1, 2]
    assert (
        client.get(
            f"/v1/experiments/{experiment.pk}/runs", {"cursor": "x"}, headers=auth
        ).status_code
        == 422
    )
    assert client.get("/v1/experiments/999999", headers=auth).status_code == 404


def test_bad_evaluations_and_experiments(client, auth, experiment):
    example = version_examples(version=experiment.dataset_version).first().example_id
    run = ExperimentRun.objects.create(experiment=experiment, example_id=example, output="x")
    url = "/v1/experiment_evaluations"
    base = {"experiment_run_id": str(run.pk), "name": "exact", "start_time": T, "end_time": T}
    cases = [
        ({**base, "experiment_run_id": "0"}, 404, "experiment_run_id: run '0' not found"),
        ({**base, "result": {"score": "high"}}, 400, "result.score: must be a finite number"),
        (
            {**base, "annotator_kind": "ROBOT", "result": {"score": 1}},
            400,
            "annotator_kind: must be one of",
        ),
        ({**base, "name": " ", "result": {"score": 1}}, 400, "name: must not be empty"),
        (base, 400, "result: give a result or an error"),
    ]
    for body, status, detail in cases:
        response = _post(client, auth, url, body)
        assert response.status_code == status, (body, response.content)
        assert response.json()["detail"].startswith(detail)
    assert not ExperimentEvaluation.objects.exists()

    create = f"/v1/datasets/{experiment.dataset_id}/experiments"
    assert _post(client, auth, create, {"repetitions": 0}).json()["detail"] == (
        "repetitions: must be between 1 and 100"
    )
    assert _post(client, auth, create, {"version_id": "424242"}).status_code == 404
    assert _post(client, auth, "/v1/datasets/nope/experiments", {}).status_code == 404
