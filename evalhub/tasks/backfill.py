"""Backfills: a run over the items that started in a range (any age), newest first, up to a
cap; its items are listed by the first worker that takes it up (``run_plan``). A task and its
backfill are created together, both or neither (``task_save``: the task form and the API).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from evalhub.tasks.models import (
    RunKind,
    Task,
    TaskRun,
)
from evalhub.tasks.planning import (
    Unlisted,
    Window,
    candidates_iter,
    candidates_query,
    sampled,
)
from evalhub.tasks.runs import (
    RunRejected,
    items_insert,
    providers_check,
    run_config,
    run_enqueue,
    run_log,
)
from evalhub.tasks.services import TASK_FIELDS, TaskInput, task_create, task_update

DEFAULT_MAX_ITEMS = 10_000
MAX_ITEMS_LIMIT = 1_000_000


@dataclass(frozen=True)
class BackfillInput:
    """A backfill asked for with a task: spans that started in [start, end), at most
    ``max_items``."""

    start: datetime
    end: datetime | None = None
    max_items: int | None = DEFAULT_MAX_ITEMS


@transaction.atomic
def task_save(
    *,
    data: TaskInput,
    task: Task | None = None,
    backfill: BackfillInput | None = None,
    user: User | None = None,
) -> tuple[Task, TaskRun | None]:
    """Create a task (or, given ``task``, change every field of it to ``data``) and, given
    ``backfill``, queue its backfill run — all or nothing: a rejected backfill (``RunRejected``)
    leaves no task behind and no change to one; an invalid task raises ``TaskInvalid``."""
    if task is None:
        saved = task_create(data=data, user=user)
    else:
        saved = task_update(task=task, changes={name: getattr(data, name) for name in TASK_FIELDS})
    run = None
    if backfill is not None:
        run = run_backfill_create(
            task=saved,
            start=backfill.start,
            end=backfill.end,
            max_items=backfill.max_items,
            user=user,
        )
    return saved, run


@transaction.atomic
def run_backfill_create(
    *,
    task: Task,
    start: datetime,
    end: datetime | None = None,
    max_items: int | None = DEFAULT_MAX_ITEMS,
    user: User | None = None,
    now: datetime | None = None,
) -> TaskRun:
    """A backfill over spans (traces, sessions) that started in [start, end), newest first, at
    most ``max_items`` sampled items. Any age: no retention limit. Items the task evaluated
    before are left out."""
    now = now or timezone.now()
    task = Task.objects.select_for_update().get(pk=task.pk)
    if task.is_paused:
        raise RunRejected("task_paused", f"task {task.name} is paused; resume it first")
    if task.on_dataset:
        raise RunRejected(
            "dataset_task", f"task {task.name} scores new experiments; it has no backfill"
        )
    end = end or now
    if timezone.is_naive(start) or timezone.is_naive(end):
        raise RunRejected("invalid_range", "give times with a time zone (e.g. ...Z)")
    if start > now:
        raise RunRejected("range_in_future", "the range starts in the future: nothing to evaluate")
    if start >= end:
        raise RunRejected("invalid_range", "data_start_time must be before data_end_time")
    max_items = DEFAULT_MAX_ITEMS if max_items is None else int(max_items)
    if not 1 <= max_items <= MAX_ITEMS_LIMIT:
        raise RunRejected("invalid_max_spans", f"max_spans must be from 1 to {MAX_ITEMS_LIMIT}")
    config = run_config(task=task)
    if not config["evaluators"]:
        raise RunRejected("no_evaluators", f"task {task.name} has no evaluators")
    providers_check(config)
    run = TaskRun.objects.create(
        task=task,
        project_id=task.project_id,
        kind=RunKind.BACKFILL,
        config=config,
        data_start=start,
        data_end=min(end, now),
        max_items=max_items,
        created_by=user if user and user.is_authenticated else None,
    )
    run_log(
        run,
        f"backfill queued: {start.isoformat()} to {min(end, now).isoformat()}, "
        f"at most {max_items} items",
    )
    run_enqueue(run)
    return run


def run_plan(*, run: TaskRun) -> TaskRun:
    """List a backfill's items (idempotent: a re-run after a crash adds what is missing, up to
    the cap)."""
    if run.planned:
        return run
    assert run.project_id is not None and run.task_id is not None  # a project task's backfill
    config = run.config
    query = candidates_query(
        project_id=run.project_id,
        granularity=config["granularity"],
        filter_text=config.get("filter", ""),
        window=Window(
            field="start",
            start=run.data_start,
            end=run.data_end,
            complete_before=run.created_at - timedelta(seconds=config.get("quiet_seconds", 0))
            if config.get("quiet_seconds")
            else None,
        ),
    )
    already = run.items.count()
    matched = query.count()
    limit = None if run.max_items is None else max(run.max_items - already, 0)
    with transaction.atomic():
        new = Unlisted(
            candidates_iter(query, config["granularity"]),
            task_id=run.task_id,
            granularity=config["granularity"],
        )
        total = items_insert(
            run,
            sampled(iter(new), rate_percent=config.get("sampling_rate", 100.0), limit=limit),
            dedupe_task_id=run.task_id,
        )
        TaskRun.objects.filter(pk=run.pk).update(
            matched=matched, sampled=total, planned=True, updated_at=timezone.now()
        )
    run.refresh_from_db()
    done = new.left_out - already
    run_log(
        run,
        f"{matched} items match; {total} in the sample and the cap"
        + (f"; {done} already evaluated by this task were left out" if done > 0 else ""),
    )
    return run
