"""Celery entry points for experiments: ids in, a service call, nothing else."""

from __future__ import annotations

from celery import shared_task

from evalhub.experiments.services import EXPERIMENT_EVALUATE, PROMPT_EXPERIMENT_RUN


@shared_task(
    name=PROMPT_EXPERIMENT_RUN,
    ignore_result=True,
    acks_late=True,
    reject_on_worker_lost=True,
)
def prompt_experiment_run(experiment_id: int) -> int:
    from evalhub.experiments.runner import prompt_experiment_execute

    return prompt_experiment_execute(experiment_id=experiment_id)


@shared_task(
    name=EXPERIMENT_EVALUATE,
    ignore_result=True,
    acks_late=True,
    reject_on_worker_lost=True,
)
def experiment_evaluate_run(experiment_id: int, evaluator_id: int) -> int:
    from evalhub.experiments.runner import experiment_evaluate

    return experiment_evaluate(experiment_id=experiment_id, evaluator_id=evaluator_id)
