"""Celery entry point of judge calibration: route a task's new disagreements to review."""

from __future__ import annotations

from celery import shared_task

from evalhub.calibration.routing import ROUTE


@shared_task(name=ROUTE, ignore_result=True, acks_late=True)
def disagreements_route(routing_id: int, targets: list[list[str]] | None = None) -> int:
    """Idempotent: an item already in the queue is not added twice."""
    from evalhub.calibration.routing import routing_apply

    routed = routing_apply(
        routing_id=routing_id,
        targets=None if targets is None else [(kind, key) for kind, key in targets],
    )
    return routed.added if routed is not None else 0
