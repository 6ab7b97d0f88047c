"""The comparison of experiments per example: scores side by side, regressions, and the
comparison page's refusals."""

from __future__ import annotations

import pytest

from annotations.datasets.upload import UploadRow, dataset_upload
from annotations.datasets.versions import ExampleContent, version_examples
from evalhub.experiments.selectors import experiments_compare
from evalhub.experiments.services import RunInput, evaluation_upsert, experiment_create, run_record

pytestmark = pytest.mark.django_db


def _experiment(dataset, version, outputs: dict[int, str], scores: dict[int, float]):
    experiment = experiment_create(dataset=dataset, version=version, name=str(scores))
    for example_id, output in outputs.items():
        run = run_record(experiment=experiment, run=RunInput(example_id=example_id, output=output))
        evaluation_upsert(run=run, name="exact", result={"score": scores[example_id]})
    return experiment


def test_regressions_are_lower_scores_than_in_the_first():
    uploaded = dataset_upload(
        name="quiz",
        rows=[UploadRow(ExampleContent({"q": str(i)}, {"a": str(i)})) for i in range(3)],
    )
    ids = [r.example_id for r in version_examples(version=uploaded.version)]
    a = _experiment(
        uploaded.dataset, uploaded.version, dict.fromkeys(ids, "x"), dict.fromkeys(ids, 1.0)
    )
    b = _experiment(
        uploaded.dataset,
        uploaded.version,
        dict.fromkeys(ids, "y"),
        {ids[0]: 0.0, ids[1]: 1.0, ids[2]: 0.0},
    )
    names, rows = experiments_compare(experiments=[a, b])
    assert names == ["exact"]
    assert [r.regressed for r in rows] == [True, False, True]
    assert rows[0].scores["exact"] == [1.0, 0.0]
    # Against itself, nothing regresses; the other way round, nothing either (B is lower).
    assert not any(r.regressed for r in experiments_compare(experiments=[b, a])[1])


def test_the_compare_page_refuses_one_experiment_or_two_datasets(admin_client):
    one = dataset_upload(name="one", rows=[UploadRow(ExampleContent({"q": "1"}, {}))])
    two = dataset_upload(name="two", rows=[UploadRow(ExampleContent({"q": "1"}, {}))])
    a = experiment_create(dataset=one.dataset)
    b = experiment_create(dataset=two.dataset)
    alone = admin_client.get("/experiments/compare/", {"ids": [a.pk]})
    assert alone.status_code == 400
    assert "Choose two to 4 experiments" in alone.content.decode()
    mixed = admin_client.get("/experiments/compare/", {"ids": [a.pk, b.pk]})
    assert mixed.status_code == 400
    assert "different datasets" in mixed.content.decode()
