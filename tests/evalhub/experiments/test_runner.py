"""Prompt experiments run by EvalHub (Celery, eager here) against the fake OpenAI-compatible
server, and hub evaluators scoring experiment runs."""

from __future__ import annotations

import pytest

from annotations.datasets.versions import dataset_version_delete
from evalhub.evaluators.services import evaluator_create
from evalhub.experiments.models import ExperimentEvaluation, ExperimentRun, ExperimentStatus
from evalhub.experiments.runner import prompt_experiment_execute
from evalhub.experiments.services import (
    ExperimentInvalid,
    VersionGone,
    experiment_evaluate_start,
    prompt_experiment_start,
)
from tests.evalhub.experiments.factories import upper_reply

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_prompt_experiment_runs_every_example_and_records_errors(
    dataset, prompt, provider, fake_openai, celery_eager, django_capture_on_commit_callbacks
):
    fake_openai.reply = upper_reply
    with django_capture_on_commit_callbacks(execute=True):
        experiment = prompt_experiment_start(
            dataset=dataset.dataset,
            version=dataset.version,
            prompt_version=prompt,
            provider=provider,
            variables={"question": "input.question"},
            concurrency=4,
        )
    experiment.refresh_from_db()
    assert experiment.status == ExperimentStatus.COMPLETED
    runs = {r.example.revisions.get().input.get("question"): r for r in experiment.runs.all()}
    assert runs["capital of France"].output == "Paris"
    assert runs["2+2"].output == "2+2"
    assert runs["capital of France"].prompt_tokens == 10
    # The example without the variable: its run has the error, the others went on.
    assert runs[None].error == "variable 'question': input.question is missing on this example"
    assert {b["temperature"] for b in fake_openai.bodies} == {0.2}
    assert fake_openai.bodies[0]["messages"][0] == {
        "role": "system",
        "content": "Answer in capitals.",
    }
    assert len(fake_openai.bodies) == 2
    # Running it again (a redelivered task) calls nothing more: it is already completed.
    assert prompt_experiment_execute(experiment_id=experiment.pk) == 0

    # Scored with a hub evaluator (a built-in check) from the experiment page's action.
    checker = evaluator_create(
        name="exact",
        config={"kind": "CODE", "check": "exact_match", "params": {"case_sensitive": False}},
    )
    with django_capture_on_commit_callbacks(execute=True):
        experiment_evaluate_start(experiment=experiment, evaluator=checker)
    scores = {
        e.run.output: e.score
        for e in ExperimentEvaluation.objects.filter(run__experiment=experiment)
    }
    # exact_match against the expected answer: "Paris" matches "PARIS", "2+2" is not "4".
    assert scores == {"Paris": 1.0, "2+2": 0.0}
    assert ExperimentEvaluation.objects.filter(name="exact").count() == 2


def test_a_provider_failure_is_the_runs_error(
    dataset, prompt, provider, fake_openai, celery_eager, django_capture_on_commit_callbacks
):
    from tests.evalhub.fake_openai import Behavior

    fake_openai.reply = upper_reply
    fake_openai.enqueue(*[Behavior.status(400)] * 1)
    with django_capture_on_commit_callbacks(execute=True):
        experiment = prompt_experiment_start(
            dataset=dataset.dataset,
            version=dataset.version,
            prompt_version=prompt,
            provider=provider,
            concurrency=1,
        )
    errors = list(ExperimentRun.objects.filter(experiment=experiment, error__isnull=False))
    assert len(errors) == 2  # the provider's 400 and the missing variable
    assert ExperimentRun.objects.filter(experiment=experiment, error__isnull=True).count() == 1


def test_bad_prompt_experiments_are_refused(dataset, prompt, provider):
    with pytest.raises(ExperimentInvalid, match=r"variables: variables\.question: 'answer\.x'"):
        prompt_experiment_start(
            dataset=dataset.dataset,
            version=dataset.version,
            prompt_version=prompt,
            provider=provider,
            variables={"question": "answer.x"},
        )
    dataset_version_delete(version=dataset.version)
    with pytest.raises(VersionGone):
        prompt_experiment_start(
            dataset=dataset.dataset,
            version=dataset.version,
            prompt_version=prompt,
            provider=provider,
        )
    assert not ExperimentRun.objects.exists()


def test_an_llm_judge_scores_runs_with_their_input_output_and_reference(
    dataset, provider, fake_openai, celery_eager, django_capture_on_commit_callbacks
):
    from evalhub.experiments.services import RunInput, experiment_create, run_record

    experiment = experiment_create(dataset=dataset.dataset, version=dataset.version)
    for revision in dataset.version.revisions.all():
        run_record(
            experiment=experiment, run=RunInput(example_id=revision.example_id, output="Paris")
        )
    judge = evaluator_create(
        name="judge",
        config={
            "kind": "LLM",
            "provider_id": provider.pk,
            "template": "Q: {input}\nA: {output}\nReference: {reference}\nCorrect?",
            "choices": [{"label": "correct", "score": 1}, {"label": "incorrect", "score": 0}],
            "output_mode": "tool",
        },
    )
    fake_openai.answer("correct", "matches the reference")
    with django_capture_on_commit_callbacks(execute=True):
        experiment_evaluate_start(experiment=experiment, evaluator=judge)
    evaluations = ExperimentEvaluation.objects.filter(run__experiment=experiment, name="judge")
    assert sorted(e.label for e in evaluations) == ["correct"] * 3
    assert {e.annotator_kind for e in evaluations} == {"LLM"}
    prompts = [b["messages"][-1]["content"] for b in fake_openai.bodies]
    assert "Q: capital of France\nA: Paris\nReference: PARIS\nCorrect?" in "\n".join(prompts)
    assert all(e.metadata.get("prompt_tokens") for e in evaluations)
