"""``client.datasets`` and ``client.experiments`` against a live server: a dataset from a
DataFrame, versions, a run with evaluators, a task that raises, resume, bad input."""

from __future__ import annotations

import pandas as pd
import pytest
from evalhub_client import ValidationError

from evalhub.experiments.models import ExperimentEvaluation, ExperimentRun

pytestmark = pytest.mark.django_db(transaction=True)

FRAME = pd.DataFrame(
    {"question": ["2+2", "3+3", "boom"], "answer": ["4", "6", "?"], "level": [1, 2, 3]}
)


def test_datasets_and_experiments(client):
    ds = client.datasets.create(
        "sums",
        dataframe=FRAME,
        input_keys=["question"],
        output_keys=["answer"],
        metadata_keys=["level"],
    )
    assert [e["input"] for e in ds] == [
        {"question": "2+2"},
        {"question": "3+3"},
        {"question": "boom"},
    ]
    assert ds.examples[1]["metadata"] == {"level": 2}  # types kept: the frame is sent as JSON

    def task(input):
        if input["question"] == "boom":
            raise ValueError("cannot add boom")
        return str(eval(input["question"]))

    def exact(output, expected):
        return output == expected["answer"]

    ran = client.experiments.run(ds, task, evaluators=[exact], name="sums v1", progress=False)
    assert (ran.successful_run_count, ran.failed_run_count) == (2, 1)
    failed = ExperimentRun.objects.get(error__isnull=False)
    assert failed.error == "ValueError: cannot add boom"
    assert sorted(e.score for e in ExperimentEvaluation.objects.filter(name="exact")) == [
        0.0,
        1.0,
        1.0,
    ]

    resumed = client.experiments.resume(ran.id, lambda input: "?", progress=False)
    assert (resumed.successful_run_count, resumed.failed_run_count) == (3, 0)
    stored = client.experiments.evaluate(
        ran.id, {"has_text": lambda output: bool(output)}, progress=False
    )
    assert stored == 3
    records = client.experiments.runs(ran.id)
    assert {a["name"] for r in records for a in r["annotations"]} == {"exact", "has_text"}
    assert [e.name for e in client.experiments.list("sums")] == ["sums v1"]

    # Versions: edit and delete make new ones; the first still reads as it was.
    first = ds.version_id
    edited = client.datasets.edit_examples(
        "sums",
        [{"id": ds.examples[0]["id"], "input": {"question": "1+1"}, "output": {"answer": "2"}}],
    )
    smaller = client.datasets.delete_examples("sums", [ds.examples[2]["id"]])
    assert len(smaller) == 2 and len(client.datasets.get("sums", version_id=first)) == 3
    assert [v["version_id"] for v in client.datasets.versions("sums")] == [
        smaller.version_id,
        edited.version_id,
        first,
    ]
    diff = client.datasets.diff("sums", version_id=smaller.version_id, against=first)
    assert (len(diff["changed"]), len(diff["removed"])) == (1, 1)
    assert client.datasets.download("sums", version_id=first).count("\n") == 4

    client.experiments.delete(ran.id)
    assert not ExperimentRun.objects.exists()


def test_a_malformed_row_is_refused_with_its_number(client):
    with pytest.raises(ValidationError, match=r"inputs: row 2: must be a JSON object"):
        client.datasets.create("bad", inputs=[{"q": 1}, "two"])
    assert client.datasets.list() == []
