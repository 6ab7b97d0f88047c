"""Celery entry point: the span table's partitions kept created ahead (beat, daily;
``evalhub.celery.beat_schedule``)."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="tracing.partitions_ensure", ignore_result=True, acks_late=True)
def partitions_ensure() -> list[str]:
    """Idempotent: partitions that exist are left alone; returns the names created."""
    from tracing.partitions import partitions_ensure as ensure

    return ensure()
