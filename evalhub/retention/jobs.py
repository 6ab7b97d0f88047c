"""Celery entry point: the retention pass on beat (``evalhub.celery.beat_schedule``)."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="evalhub.retention_sweep", ignore_result=True, acks_late=True)
def retention_sweep() -> int:
    """Idempotent: a second pass (or a redelivered message) finds nothing older to delete."""
    from evalhub.retention.services import retention_sweep as sweep

    return sum(result.traces for result in sweep())
