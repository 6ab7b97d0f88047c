"""The Celery app. JSON only; time limits from settings; tasks discovered from the apps."""

from __future__ import annotations

import os

from celery import Celery
from celery.signals import worker_init, worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalhub.settings")
# Celery's Django fix-up runs the system checks when a worker starts, and they import the URL
# configuration — every view, the API and pyarrow — into each worker process (~55 MB). The
# checks run where they belong: migrate, runserver, manage.py check and the test suite.
os.environ.setdefault("CELERY_SKIP_CHECKS", "1")

app = Celery("evalhub")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    task_ignore_result=True,
    worker_prefetch_multiplier=1,
    broker_connection_retry_on_startup=True,
    timezone="UTC",
)
app.autodiscover_tasks(related_name="jobs")  # evalhub.tasks.jobs; names stay evalhub.*


def beat_schedule() -> dict[str, dict[str, object]]:
    """The one schedule registry: continuous tasks' tick, the stale-run sweeper, the retention
    pass, the span partitions and the hourly trace roll-ups ahead (``tracing.jobs``), the
    monitors' dispatcher and the automations' sweep (``evalhub.monitors.jobs``)."""
    from django.conf import settings

    tick = float(getattr(settings, "EVALHUB_TASKS_TICK_SECONDS", 5))
    sweep = float(getattr(settings, "EVALHUB_RUNS_SWEEP_SECONDS", 30))
    retention = float(getattr(settings, "EVALHUB_RETENTION_SWEEP_SECONDS", 3600))
    monitors = float(getattr(settings, "EVALHUB_MONITORS_TICK_SECONDS", 15))
    automations = float(getattr(settings, "EVALHUB_AUTOMATIONS_SWEEP_SECONDS", 60))
    return {
        "tasks-tick": {
            "task": "evalhub.tasks_tick",
            "schedule": tick,
            "options": {"expires": tick},
        },
        "runs-sweep": {
            "task": "evalhub.runs_sweep",
            "schedule": sweep,
            "options": {"expires": sweep},
        },
        "alignment-runs-sweep": {
            "task": "alignment.runs_sweep",
            "schedule": sweep,
            "options": {"expires": sweep},
        },
        "retention-sweep": {
            "task": "evalhub.retention_sweep",
            "schedule": retention,
            "options": {"expires": retention},
        },
        # The span table's partitions on PostgreSQL, created weeks ahead (tracing.partitions).
        "partitions-ensure": {
            "task": "tracing.partitions_ensure",
            "schedule": 86_400.0,
            "options": {"expires": 86_400.0},
        },
        # The Projects page's hourly trace roll-ups, stored ahead (tracing.store.hourly).
        "trace-hours-fill": {
            "task": "tracing.trace_hours_fill",
            "schedule": 300.0,
            "options": {"expires": 300.0},
        },
        "monitors-dispatch": {
            "task": "monitors.dispatch",
            "schedule": monitors,
            "options": {"expires": monitors},
        },
        "automations-sweep": {
            "task": "monitors.automations_sweep",
            "schedule": automations,
            "options": {"expires": automations},
        },
    }


@worker_init.connect
@worker_process_init.connect
def _run_custom_code_here(**kwargs: object) -> None:
    """Workers run custom code evaluators in their sandbox; other processes send it to them."""
    from evalhub.evaluators.sandbox.dispatch import worker_process_mark

    worker_process_mark()


@app.on_after_finalize.connect
def _schedule(sender: Celery, **kwargs: object) -> None:
    sender.conf.beat_schedule = beat_schedule()
