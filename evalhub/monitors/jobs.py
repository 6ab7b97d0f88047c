"""Celery entry points for monitors and automations: ids in, a service call, idempotent.

- ``monitors_dispatch`` (beat, every ``EVALHUB_MONITORS_TICK_SECONDS``): each monitor with a
  closed, unchecked window gets a ``monitor_check``; the sweep re-sends deliveries whose
  message was lost.
- ``monitor_check``: checks the monitor's due windows in order; one row per window, so a
  redelivery (late acks: a worker killed mid-check) or a second dispatch writes nothing twice.
- ``delivery_send``: one attempt at a message to a channel, re-scheduled with back-off.
- ``automations_apply``: the automations of a project over results just written.
- ``automations_sweep`` (beat, every ``EVALHUB_AUTOMATIONS_SWEEP_SECONDS``): each rule over the
  results written since its last sweep, for the jobs that were lost.
"""

from __future__ import annotations

from celery import shared_task

from evalhub.monitors.automations import AUTOMATIONS_APPLY, AUTOMATIONS_SWEEP
from evalhub.monitors.channels import DELIVERY_SEND


@shared_task(name="monitors.dispatch", ignore_result=True)
def monitors_dispatch() -> list[int]:
    """Due monitors get a check; deliveries whose message was lost get sent again."""
    from django.conf import settings

    from evalhub.monitors.channels import deliveries_stale
    from evalhub.monitors.checks import monitors_due

    expires = max(60, 4 * int(settings.EVALHUB_MONITORS_TICK_SECONDS))
    due = monitors_due()
    for monitor_id in due:
        # A check not started by then is superseded by the next tick's.
        monitor_check.apply_async((monitor_id,), expires=expires)
    for delivery_id in deliveries_stale():
        delivery_send.delay(delivery_id)
    return due


@shared_task(name="monitors.check", ignore_result=True, acks_late=True, reject_on_worker_lost=True)
def monitor_check(monitor_id: int) -> int:
    from evalhub.monitors.checks import monitor_check as check

    return len(check(monitor_id=monitor_id))


@shared_task(
    bind=True,
    name=DELIVERY_SEND,
    ignore_result=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=None,
)
def delivery_send(self, delivery_id: int) -> None:
    from evalhub.monitors.channels import delivery_attempt

    wait = delivery_attempt(delivery_id=delivery_id)
    if wait is not None:
        delivery_send.apply_async((delivery_id,), countdown=wait)


@shared_task(
    name=AUTOMATIONS_APPLY,
    ignore_result=True,
    acks_late=True,
    reject_on_worker_lost=True,
)
def automations_apply(project_id: int, span_ids: list[int]) -> int:
    from evalhub.monitors.automations import automations_run

    return automations_run(project_id=project_id, span_ids=span_ids)


@shared_task(name=AUTOMATIONS_SWEEP, ignore_result=True)
def automations_sweep() -> int:
    from evalhub.monitors.automations import automations_sweep as sweep

    return sweep()
