"""Tasks whose target is a dataset: every new experiment on it is scored on the task engine,
its variables read from the run (input, output, expected output, metadata) and from the
spans of the run's trace."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from annotations.datasets.upload import UploadRow, dataset_upload
from annotations.datasets.versions import ExampleContent
from evalhub.evaluators.services import evaluator_create
from evalhub.experiments.models import ExperimentEvaluation
from evalhub.experiments.services import RunInput, experiment_create, run_record
from evalhub.experiments.task_target import dataset_task_save
from evalhub.tasks.backfill import run_backfill_create
from evalhub.tasks.continuous import continuous_run_plan
from evalhub.tasks.engine import run_work
from evalhub.tasks.models import EXPERIMENT_RUN, RunStatus, TargetKind, TaskRun
from evalhub.tasks.runs import RunRejected
from evalhub.tasks.services import TaskInvalid
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def uploaded():
    rows = [
        UploadRow(ExampleContent({"question": "capital of France"}, {"answer": "Paris"})),
        UploadRow(ExampleContent({"question": "2+2"}, {"answer": "4"}, {"topic": "math"})),
    ]
    return dataset_upload(name="qa", rows=rows)


@pytest.fixture
def exact():
    return evaluator_create(
        name="exact",
        config={"kind": "CODE", "check": "exact_match", "params": {"case_sensitive": False}},
    )


def _experiment(uploaded, outputs, *, name="sdk", traces=None):
    experiment = experiment_create(dataset=uploaded.dataset, version=uploaded.version, name=name)
    examples = sorted(uploaded.version.revisions.values_list("example_id", flat=True))
    for index, (example_id, output) in enumerate(zip(examples, outputs, strict=True)):
        run_record(
            experiment=experiment,
            run=RunInput(
                example_id=example_id,
                output=output,
                trace_id=(traces or {}).get(index, ""),
            ),
        )
    return experiment


def _step(task, *, later=60):
    return continuous_run_plan(task_id=task.pk, now=timezone.now() + timedelta(seconds=later))


def test_a_dataset_task_scores_each_new_experiment_once(uploaded, exact, fast_retry):
    before = _experiment(uploaded, ["Paris", "5"], name="before the task")
    task = dataset_task_save(dataset=uploaded.dataset, name="auto", evaluators=[exact])
    assert task.target == TargetKind.DATASET and task.project is None and task.continuous

    assert _step(task) is None  # the experiment made before the task is not its to score
    experiment = _experiment(uploaded, ["paris", "5"], name="after")
    run = _step(task)
    assert run is not None and run.project is None
    assert run.config["experiment_id"] == experiment.pk
    assert run.items.count() == 2
    assert set(run.items.values_list("target_kind", flat=True)) == {EXPERIMENT_RUN}

    assert run_work(run_id=run.pk, worker="test", retry=fast_retry) == "finished"
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED
    assert (run.succeeded, run.errored, run.finished) == (2, 0, 2)
    scores = dict(
        ExperimentEvaluation.objects.filter(run__experiment=experiment).values_list(
            "run__output", "score"
        )
    )
    assert scores == {"paris": 1.0, "5": 0.0}
    evaluation = ExperimentEvaluation.objects.filter(run__experiment=experiment).first()
    assert evaluation.name == "exact" and evaluation.metadata["task_run_id"] == run.pk
    assert not ExperimentEvaluation.objects.filter(run__experiment=before).exists()
    assert _step(task) is None  # scored once: nothing new


def test_an_sdk_experiment_is_scored_once_quiet(uploaded, exact):
    task = dataset_task_save(
        dataset=uploaded.dataset, name="auto", evaluators=[exact], quiet_seconds=30
    )
    _experiment(uploaded, ["Paris", "4"])
    assert _step(task, later=5) is None  # runs may still be arriving
    assert _step(task, later=60) is not None


def test_variables_read_the_run_and_its_trace_spans(uploaded, provider, fake_openai, fast_retry):
    spans = factories.trace(project="Experiment-traces", output_value="Paris, in France")
    root = spans[0]
    judge = evaluator_create(
        name="judge",
        config={
            "kind": "LLM",
            "provider_id": provider.pk,
            "template": "Q: {input}\nA: {output}\nExpected: {reference}\nTopic: {topic}\n"
            "Steps: {steps}\nCorrect?",
            "variables": {"topic": "metadata.topic", "steps": "trace.trajectory"},
            "choices": [{"label": "correct", "score": 1}, {"label": "incorrect", "score": 0}],
            "output_mode": "tool",
        },
    )
    task = dataset_task_save(dataset=uploaded.dataset, name="judged", evaluators=[judge])
    experiment = _experiment(
        uploaded, ["Paris", "4"], traces={0: root.trace.trace_id, 1: root.trace.trace_id}
    )
    run = _step(task)
    assert run_work(run_id=run.pk, worker="test", retry=fast_retry) == "finished"
    prompts = [json.dumps(body["messages"]) for body in fake_openai.bodies]
    math = next(p for p in prompts if "2+2" in p)
    assert "Expected: 4" in math and "Topic: math" in math
    assert "[AGENT] agent" in math and "[RETRIEVER] retrieve" in math  # the trace's spans
    run.refresh_from_db()
    # The first example has no topic in its metadata: skipped, named in the run's log.
    assert (run.succeeded, run.skipped) == (1, 1)
    assert "metadata.topic" in run.logs.filter(level="warning").get().message
    assert ExperimentEvaluation.objects.filter(run__experiment=experiment).count() == 1


def test_a_dataset_task_needs_a_dataset_and_has_no_backfill(uploaded, exact):
    with pytest.raises(TaskInvalid) as error:
        dataset_task_save(dataset=None, name="x", evaluators=[exact])
    assert error.value.field == "dataset"
    task = dataset_task_save(dataset=uploaded.dataset, name="x", evaluators=[exact])
    with pytest.raises(TaskInvalid) as error:
        dataset_task_save(dataset=uploaded.dataset, name="x", evaluators=[exact])
    assert error.value.field == "name" and "dataset qa" in error.value.message
    with pytest.raises(RunRejected) as rejected:
        run_backfill_create(task=task, start=timezone.now() - timedelta(days=1))
    assert rejected.value.code == "dataset_task"
    assert not TaskRun.objects.exists()


def test_a_prompt_experiment_is_scored_as_soon_as_it_completes(
    uploaded,
    exact,
    provider,
    fake_openai,
    celery_eager,
    django_capture_on_commit_callbacks,
    dispatched,
    fast_retry,
):
    from evalhub.experiments.prompts import prompt_version_create
    from evalhub.experiments.services import prompt_experiment_start

    prompt = prompt_version_create(
        name="echo",
        version={
            "model_name": "gpt-4o-mini",
            "template": {"type": "chat", "messages": [{"role": "user", "content": "{{question}}"}]},
        },
    )
    fake_openai.reply_with(content="Paris")
    task = dataset_task_save(dataset=uploaded.dataset, name="auto", evaluators=[exact])
    with django_capture_on_commit_callbacks(execute=True):
        experiment = prompt_experiment_start(
            dataset=uploaded.dataset,
            version=uploaded.version,
            prompt_version=prompt,
            provider=provider,
            variables={"question": "input.question"},
        )
    # Its completion listed the task's run at once (no beat tick) and sent it to a worker.
    run = TaskRun.objects.get(task=task)
    assert dispatched == [run.pk] and run.config["experiment_id"] == experiment.pk
    assert run_work(run_id=run.pk, worker="test", retry=fast_retry) == "finished"
    scores = sorted(
        ExperimentEvaluation.objects.filter(run__experiment=experiment).values_list(
            "score", flat=True
        )
    )
    assert scores == [0.0, 1.0]
