"""The Phoenix client's documented offline-evaluation flow, unchanged, against a live EvalHub:
a dataset from a DataFrame, its versions, ``run_experiment`` with a task and two evaluators,
``evaluate_experiment`` with a third, ``resume_experiment``, reading back, deleting."""

from __future__ import annotations

import httpx
import pandas as pd
import pytest
from phoenix.client import Client

from annotations.datasets.models import DatasetVersion
from evalhub.experiments.models import Experiment, ExperimentEvaluation, ExperimentRun
from tracing.models import Span

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def px(live_server, api_key) -> Client:
    return Client(base_url=live_server.url, api_key=api_key)


QUESTIONS = pd.DataFrame(
    {
        "question": ["What is 2+2?", "Capital of France?", "Colour of the sky?", "boom"],
        "answer": ["4", "Paris", "blue", "never"],
        "topic": ["math", "geo", "nature", "broken"],
    }
)
ANSWERS = {"What is 2+2?": "4", "Capital of France?": "Paris", "Colour of the sky?": "green"}


def test_the_documented_flow(px, live_server, api_key):
    dataset = px.datasets.create_dataset(
        name="capitals & sums",
        dataframe=QUESTIONS,
        input_keys=["question"],
        output_keys=["answer"],
        metadata_keys=["topic"],
    )
    assert dataset.name == "capitals & sums" and len(dataset) == 4
    first = dataset.examples[0]
    assert first["input"] == {"question": "What is 2+2?"}
    assert first["output"] == {"answer": "4"}
    assert first["metadata"] == {"topic": "math"}

    # Read back by name and by id, with its version.
    by_name = px.datasets.get_dataset(dataset="capitals & sums")
    assert by_name.id == dataset.id and by_name.version_id == dataset.version_id
    assert px.datasets.get_dataset(dataset=dataset.id).version_id == dataset.version_id
    versions = px.datasets.get_dataset_versions(dataset=dataset)
    assert [v["version_id"] for v in versions] == [dataset.version_id]

    def task(input):
        if input["question"] == "boom":
            raise RuntimeError("the model fell over")
        return ANSWERS[input["question"]]

    def exact(output, expected) -> bool:
        return output == expected["answer"]

    def short(output) -> float:
        return 1.0 if len(output or "") < 6 else 0.0

    ran = px.experiments.run_experiment(
        dataset=dataset,
        task=task,
        evaluators=[exact, short],
        experiment_name="first try",
        print_summary=False,
        retries=0,
    )
    experiment = Experiment.objects.get(pk=int(ran["experiment_id"]))
    assert experiment.dataset_version_id == int(dataset.version_id)
    runs = {r.example.revisions.get().input["question"]: r for r in experiment.runs.all()}
    assert runs["Capital of France?"].output == "Paris"
    # The task that raised: its error is on that run, and the other runs went on.
    assert "the model fell over" in runs["boom"].error
    assert sum(1 for r in runs.values() if r.error is None) == 3
    scores = {
        (e.run.example.revisions.get().input["question"], e.name): e.score
        for e in ExperimentEvaluation.objects.filter(run__experiment=experiment)
    }
    assert scores[("Capital of France?", "exact")] == 1.0
    assert scores[("Colour of the sky?", "exact")] == 0.0
    assert scores[("What is 2+2?", "short")] == 1.0
    # The run's trace arrived over OTLP in the experiment's project.
    assert runs["Capital of France?"].trace_id
    assert Span.objects.filter(trace__trace_id=runs["Capital of France?"].trace_id).exists()

    # A third evaluator on the experiment read back from the server.
    fetched = px.experiments.get_experiment(experiment_id=ran["experiment_id"])
    assert len(fetched["task_runs"]) == 4
    assert {r.name for r in fetched["evaluation_runs"]} >= {"exact", "short"}

    def says_blue(output) -> dict:
        return {"label": "blue" if output == "blue" else "other", "score": float(output == "blue")}

    px.experiments.evaluate_experiment(
        experiment=fetched, evaluators={"says_blue": says_blue}, print_summary=False
    )
    again = px.experiments.get_experiment(experiment_id=ran["experiment_id"])
    labels = {
        (r.experiment_run_id, r.name): r.result["label"]
        for r in again["evaluation_runs"]
        if r.name == "says_blue"
    }
    # Every run is scored, the failed one too; none answered "blue".
    assert sorted(labels.values()) == ["other"] * 4

    # Resume: only the failed example runs again, now that the task works.
    def fixed(input):
        return "never" if input["question"] == "boom" else ANSWERS[input["question"]]

    summary = px.experiments.get(experiment_id=ran["experiment_id"])
    assert (summary["successful_run_count"], summary["failed_run_count"]) == (3, 1)
    px.experiments.resume_experiment(experiment_id=ran["experiment_id"], task=fixed)
    summary = px.experiments.get(experiment_id=ran["experiment_id"])
    assert (summary["successful_run_count"], summary["failed_run_count"]) == (4, 0)
    assert ExperimentRun.objects.get(experiment=experiment, output="never").error is None

    # Downloads and delete.
    headers = {"Authorization": f"Bearer {api_key}"}
    csv_text = httpx.get(
        f"{live_server.url}/v1/experiments/{experiment.pk}/csv", headers=headers
    ).text
    assert "exact.score" in csv_text.splitlines()[0]
    px.experiments.delete(experiment_id=ran["experiment_id"])
    assert not Experiment.objects.filter(pk=experiment.pk).exists()
    with pytest.raises(ValueError, match="Experiment not found"):
        px.experiments.get(experiment_id=ran["experiment_id"])


def test_every_change_is_a_version(px):
    dataset = px.datasets.create_dataset(
        name="grows", inputs=[{"q": "a"}], outputs=[{"a": "1"}], metadata=[{"k": 1}]
    )
    bigger = px.datasets.add_examples_to_dataset(
        dataset="grows", inputs=[{"q": "b"}], outputs=[{"a": "2"}]
    )
    assert bigger.version_id != dataset.version_id and len(bigger) == 2
    # The older version still reads as it was.
    old = px.datasets.get_dataset(dataset="grows", version_id=dataset.version_id)
    assert [e["input"] for e in old.examples] == [{"q": "a"}]
    assert len(px.datasets.get_dataset_versions(dataset="grows")) == 2


def test_experiment_on_a_deleted_version_is_refused(px, client, auth):
    dataset = px.datasets.create_dataset(name="old", inputs=[{"q": "a"}], outputs=[{"a": "1"}])
    DatasetVersion.objects.filter(pk=int(dataset.version_id)).update(deleted_at="2026-01-01T00:00Z")
    with pytest.raises(httpx.HTTPStatusError) as caught:
        px.experiments.create(dataset_id=dataset.id, dataset_version_id=dataset.version_id)
    assert caught.value.response.status_code == 409
    assert caught.value.response.json()["detail"] == (
        f"version_id: dataset version {dataset.version_id} was deleted; use another version"
    )
    assert not Experiment.objects.exists()
