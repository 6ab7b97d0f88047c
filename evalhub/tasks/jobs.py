"""Celery entry points for online evaluation. Each takes ids, loads rows and calls a service
(``evalhub.tasks.jobs``); status lives on our own rows (``TaskRun``), never in Celery's results.

- ``tasks_tick`` (beat, every ``EVALHUB_TASKS_TICK_SECONDS``): the continuous tasks that are
  due each get ``task_continuous_step``.
- ``task_continuous_step``: lists what arrived since the task's cursor as a run.
- ``run_execute``: a time slice of work on a run; re-dispatches itself while items are left.
  Late acks: a worker killed mid-slice leaves the message to be redelivered, and the run's
  lease to expire — the sweeper then hands it to another worker, which resumes after the last
  committed result.
- ``runs_sweep`` (beat): dispatches runs whose worker vanished or whose message was lost.
- ``code_evaluate`` (the ``EVALHUB_SANDBOX_QUEUE`` queue): custom evaluator code for a web
  process, which never runs it itself; the caller waits for the result (``evalhub.evaluators.sandbox.dispatch``).

The services are imported inside each task: the worker's main process (and beat) import this
module to register the tasks, and need not hold the LLM client libraries (~50 MB) only the
pool processes use.
"""

from __future__ import annotations

import logging

from celery import shared_task

logger = logging.getLogger(__name__)


@shared_task(name="evalhub.tasks_tick", ignore_result=True)
def tasks_tick() -> int:
    from evalhub.tasks import continuous

    due = continuous.tasks_due()
    for task_id in due:
        task_continuous_step.delay(task_id)
    return len(due)


@shared_task(name="evalhub.task_continuous_step", ignore_result=True, acks_late=True)
def task_continuous_step(task_id: int) -> int | None:
    from evalhub.tasks import continuous

    run = continuous.continuous_run_plan(task_id=task_id)
    return run.pk if run is not None else None


@shared_task(
    bind=True,
    name="evalhub.run_execute",
    ignore_result=True,
    acks_late=True,
    reject_on_worker_lost=True,
)
def run_execute(self, run_id: int) -> str:
    from evalhub.tasks import engine

    worker = f"{self.request.hostname or 'worker'}:{engine.worker_name()}"
    outcome = engine.run_work(run_id=run_id, worker=worker)
    if outcome == "yielded":
        run_execute.delay(run_id)
    return outcome


@shared_task(name="evalhub.runs_sweep", ignore_result=True)
def runs_sweep() -> list[int]:
    from evalhub.tasks import runs

    stale = runs.runs_stale()
    for run_id in stale:
        runs.run_touch(run_id=run_id)  # not swept again before its lease could start
        run_execute.delay(run_id)
    if stale:
        logger.warning("re-dispatched stale runs %s", stale)
    return stale


@shared_task(name="evalhub.code_evaluate", ignore_result=False)
def code_evaluate(version_id: int, arguments: dict) -> dict:
    """Runs nothing twice that matters: the sandbox writes nothing, the caller waits at most
    until the message expires."""
    from evalhub.evaluators.sandbox.dispatch import custom_code_evaluate

    return custom_code_evaluate(version_id=version_id, arguments=arguments)
