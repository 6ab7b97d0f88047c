"""Celery entry points: the span table's partitions kept created ahead (beat, daily) and the
hourly trace roll-ups filled ahead (beat, every five minutes; ``evalhub.celery.beat_schedule``)."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="tracing.partitions_ensure", ignore_result=True, acks_late=True)
def partitions_ensure() -> list[str]:
    """Idempotent: partitions that exist are left alone; returns the names created."""
    from tracing.partitions import partitions_ensure as ensure

    return ensure()


@shared_task(
    name="tracing.trace_hours_fill",
    ignore_result=True,
    acks_late=True,
    reject_on_worker_lost=True,
)
def trace_hours_fill() -> int:
    """Idempotent: the settled hours of every project's traces rolled up ahead of the
    Projects page (hours stored already are left alone); returns how many were stored."""
    from tracing.store.hourly import trace_hours_fill as fill

    return fill()
