"""Celery entry points of the alignment workspace: run a draft over its labelled items, and the
beat sweeper sending again the runs whose worker died or whose message was lost."""

from __future__ import annotations

from celery import shared_task

from evalhub.alignment.running import RUN_EXECUTE, RUNS_SWEEP


@shared_task(
    name=RUN_EXECUTE,
    ignore_result=True,
    acks_late=True,
    reject_on_worker_lost=True,
)
def alignment_run_execute(run_id: int) -> str:
    """Idempotent: a finished run or one another worker holds is left alone."""
    from evalhub.alignment.running import alignment_run_work

    return alignment_run_work(run_id=run_id)


@shared_task(name=RUNS_SWEEP, ignore_result=True)
def alignment_runs_sweep() -> list[int]:
    from evalhub.alignment.running import alignment_runs_sweep

    return alignment_runs_sweep()
