"""Continuous runs: the tasks due for a step (beat's tick), and a step — a run of the
complete, matching, sampled items that arrived since the task's cursor (or, for a task whose
target is not a project, what the target's hook names)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from evalhub.tasks.hooks import run_target
from evalhub.tasks.models import (
    ACTIVE_RUN_STATUSES,
    EXPERIMENT_RUN,
    RunKind,
    Task,
    TaskRun,
    TaskStatus,
)
from evalhub.tasks.planning import (
    Candidate,
    Unlisted,
    Window,
    candidates_iter,
    candidates_query,
    sampled,
)
from evalhub.tasks.runs import items_insert, run_config, run_enqueue, run_log


def late_commit_seconds() -> float:
    """How long an ingest transaction may take to commit: continuous runs look back this far
    before their cursor, so a span stamped before the cursor but committed after it is seen."""
    return float(getattr(settings, "EVALHUB_TASK_LATE_COMMIT_SECONDS", 120))


def continuous_run_plan(*, task_id: int, now: datetime | None = None) -> TaskRun | None:
    """One continuous step for a task: list the complete, matching, sampled items that arrived
    since its cursor as a new run (none when there is nothing new), and move the cursor — all in
    one transaction. Skipped while the task's previous continuous run is still going."""
    now = now or timezone.now()
    with transaction.atomic():
        task = Task.objects.select_for_update().filter(pk=task_id).first()
        if task is None or task.is_paused or not task.continuous:
            return None
        if task.runs.filter(kind=RunKind.CONTINUOUS, status__in=ACTIVE_RUN_STATUSES).exists():
            return None
        task.last_checked_at = now
        if task.on_dataset:
            return _target_run_plan(task, now)
        assert task.project_id is not None  # a task not on a dataset is on a project
        quiet = task.effective_quiet_seconds
        cursor = task.cursor or task.created_at
        end = now - timedelta(seconds=quiet)
        if end <= cursor:
            task.save(update_fields=["last_checked_at"])
            return None
        config = run_config(task=task)
        start = cursor - timedelta(seconds=late_commit_seconds())
        query = candidates_query(
            project_id=task.project_id,
            granularity=task.granularity,
            filter_text=task.filter,
            window=Window(field="ingested", start=start, end=end, complete_before=end),
        )
        matched = 0

        def counting(items: Iterable[Candidate]) -> Iterator[Candidate]:
            nonlocal matched
            for item in items:
                matched += 1
                yield item

        chosen = list(
            sampled(
                counting(
                    iter(
                        Unlisted(
                            candidates_iter(query, task.granularity),
                            task_id=task.pk,
                            granularity=task.granularity,
                        )
                    )
                ),
                rate_percent=task.sampling_rate,
                limit=None,
            )
        )
        task.cursor = end
        task.save(update_fields=["last_checked_at", "cursor"])
        if not chosen or not config["evaluators"]:
            return None
        run = TaskRun.objects.create(
            task=task,
            project_id=task.project_id,
            kind=RunKind.CONTINUOUS,
            config={**config, "cursor_before": cursor.isoformat()},
            data_start=start,
            data_end=end,
            planned=True,
        )
        total = items_insert(run, chosen, dedupe_task_id=task.pk)
        TaskRun.objects.filter(pk=run.pk).update(matched=matched, sampled=total)
        run.refresh_from_db()
        run_enqueue(run)
        return run


def _target_run_plan(task: Task, now: datetime) -> TaskRun | None:
    """A continuous step of a task whose target is not a project: the target's hook
    (``evalhub.tasks.hooks.run_target``) names the items, the run is made here."""
    task.save(update_fields=["last_checked_at"])
    target = run_target(task.target)
    config = run_config(task=task)
    planned = target.plan(task=task, now=now) if target is not None else None
    if planned is None or not config["evaluators"]:
        return None
    extra, candidates = planned
    config = {**config, **extra, "granularity": EXPERIMENT_RUN}
    run = TaskRun.objects.create(
        task=task, project=None, kind=RunKind.CONTINUOUS, config=config, planned=True
    )
    total = items_insert(run, candidates, dedupe_task_id=task.pk)
    if not total:
        run.delete()
        return None
    TaskRun.objects.filter(pk=run.pk).update(matched=len(candidates), sampled=total)
    run.refresh_from_db()
    run_log(run, f"{total} experiment runs to score")
    run_enqueue(run)
    return run


def tasks_due(*, now: datetime | None = None) -> list[int]:
    """Ids of the active continuous tasks whose interval has passed since their last check."""
    now = now or timezone.now()
    due = []
    for pk, last, interval in Task.objects.filter(
        status=TaskStatus.ACTIVE, continuous=True
    ).values_list("pk", "last_checked_at", "interval_seconds"):
        if last is None or last + timedelta(seconds=interval) <= now:
            due.append(pk)
    return due
