"""Celery entry point of the alignment workspace: run a draft over its labelled items."""

from __future__ import annotations

from celery import shared_task

from evalhub.alignment.services import RUN_EXECUTE


@shared_task(
    name=RUN_EXECUTE,
    ignore_result=True,
    acks_late=True,
    reject_on_worker_lost=True,
)
def alignment_run_execute(run_id: int) -> str:
    """Idempotent: a finished run or one another worker holds is left alone."""
    from evalhub.alignment.services import alignment_run_work

    return alignment_run_work(run_id=run_id)
