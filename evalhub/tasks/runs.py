"""Runs: making a run (its settings, its items, handing it to Celery), a manual run over
chosen items, and ending runs (cancel, fail, the sweeper's stale runs). A backfill is made by
``backfill``, a continuous step by ``continuous``; the engine works on runs.

A run that cannot start raises ``RunRejected`` with a machine-readable ``code``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from evalhub.evaluators.definition import LlmJudgeConfig, config_parse
from evalhub.evaluators.models import Evaluator, EvaluatorKind
from evalhub.providers.models import Provider
from evalhub.tasks.hooks import run_config_extend
from evalhub.tasks.models import (
    Granularity,
    ItemStatus,
    RunKind,
    RunLogLevel,
    RunStatus,
    TargetKind,
    Task,
    TaskRun,
    TaskRunItem,
    TaskRunLog,
    TaskRunShard,
    TaskStatus,
)
from evalhub.tasks.planning import (
    Candidate,
    targets_by_keys,
)
from evalhub.tasks.services import TaskEvaluatorInput, provider_available
from tracing.models import Project

logger = logging.getLogger(__name__)

MANUAL_MAX_ITEMS = 10_000
_INSERT_BATCH = 1000


class RunRejected(Exception):
    """A run that cannot start: ``code`` (e.g. ``task_paused``) and a message for people."""

    def __init__(self, code: str, message: str) -> None:
        self.code, self.message = code, message
        super().__init__(message)


# --- runs: making them ------------------------------------------------------------------------


def _latest_versions(evaluators: Iterable[Evaluator]) -> dict[int, Any]:
    from evalhub.evaluators.models import EvaluatorVersion

    latest: dict[int, Any] = {}
    for version in EvaluatorVersion.objects.filter(evaluator__in=list(evaluators)).order_by(
        "evaluator_id", "-number"
    ):
        latest.setdefault(version.evaluator_id, version)
    return latest


def run_config(
    *,
    task: Task | None,
    evaluators: Sequence[TaskEvaluatorInput] | None = None,
    granularity: str | None = None,
) -> dict[str, Any]:
    """The settings a run keeps: the task's, with each evaluator's newest version."""
    if task is not None:
        entries = [
            TaskEvaluatorInput(evaluator=te.evaluator, variables=dict(te.variables))
            for te in task.task_evaluators.select_related("evaluator")
        ]
    else:
        entries = list(evaluators or [])
    versions = _latest_versions(e.evaluator for e in entries)
    config: dict[str, Any] = {
        "task_name": task.name if task else "",
        "granularity": task.granularity if task else (granularity or Granularity.SPAN),
        "filter": task.filter if task else "",
        "sampling_rate": task.sampling_rate if task else 100.0,
        "quiet_seconds": task.effective_quiet_seconds if task else 0,
        "provider_id": task.provider_id if task else None,
        "model": task.model if task else "",
        "tracing": task.tracing if task else False,
        "target": task.target if task else TargetKind.PROJECT,
        "evaluators": [
            {
                "evaluator_id": e.evaluator.pk,
                "name": e.evaluator.name,
                "kind": e.evaluator.kind,
                "version_id": versions[e.evaluator.pk].pk,
                "version": versions[e.evaluator.pk].number,
                "variables": e.variables,
            }
            for e in entries
            if e.evaluator.pk in versions
        ],
    }
    config.update(run_config_extend(task=task, config=config))  # e.g. shadow candidates
    return config


def providers_check(config: Mapping[str, Any]) -> None:
    """``RunRejected("provider_missing")`` when an LLM evaluator has no provider to call."""
    from evalhub.evaluators.models import EvaluatorVersion

    if config.get("provider_id") is not None:
        if not Provider.objects.filter(pk=config["provider_id"]).exists():
            raise RunRejected(
                "provider_missing", "the task's LLM provider no longer exists; choose another"
            )
        return
    for entry in config["evaluators"]:
        if entry["kind"] != EvaluatorKind.LLM:
            continue
        version = EvaluatorVersion.objects.get(pk=entry["version_id"])
        parsed = config_parse(version.config)
        assert isinstance(parsed, LlmJudgeConfig)
        if not provider_available(parsed):
            raise RunRejected(
                "provider_missing",
                f"evaluator {entry['name']} has no LLM provider: add one under Settings → AI "
                "providers or set the task's provider",
            )


def items_insert(
    run: TaskRun, candidates: Iterable[Candidate], *, dedupe_task_id: int | None
) -> int:
    """List ``candidates`` as the run's items (an item the task already has is left out)."""
    batch: list[TaskRunItem] = []
    granularity = run.config["granularity"]

    def flush() -> None:
        TaskRunItem.objects.bulk_create(batch, ignore_conflicts=True)
        batch.clear()

    for candidate in candidates:
        batch.append(
            TaskRunItem(
                run=run,
                dedupe_task_id=dedupe_task_id,
                target_kind=granularity,
                target_pk=candidate.pk,
                target_key=candidate.key[:255],
                start_time=candidate.start_time,
            )
        )
        if len(batch) >= _INSERT_BATCH:
            flush()
    if batch:
        flush()
    return run.items.count()


RUN_EXECUTE = "evalhub.run_execute"  # the Celery task (``evalhub.tasks.jobs.run_execute``)


def run_dispatch(run_id: int) -> None:
    """Hands a run to Celery, finding the task by its registered name (the jobs module imports
    these services, never the other way round; ``TasksConfig.ready`` registers the jobs). A
    message that cannot be sent is not lost: the run stays queued and the sweeper dispatches it
    again."""
    from celery import current_app

    try:
        current_app.tasks[RUN_EXECUTE].delay(run_id)
    except Exception:  # the broker is down: the sweeper retries
        logger.exception("could not dispatch run %s; the sweeper will", run_id)


def run_enqueue(run: TaskRun) -> None:
    """Start working on ``run`` once the current transaction commits."""
    run_id = run.pk
    transaction.on_commit(lambda: run_dispatch(run_id))


def run_log(run: TaskRun, message: str, *, level: str = RunLogLevel.INFO, **fields: str) -> None:
    TaskRunLog.objects.create(run=run, level=level, message=message, **fields)


@transaction.atomic
def run_manual_create(
    *,
    project: Project,
    granularity: str,
    keys: Sequence[str],
    task: Task | None = None,
    evaluator: Evaluator | None = None,
    user: User | None = None,
) -> TaskRun:
    """A run over exactly these spans (traces, sessions) — chosen in the trace browser — with a
    task's evaluators or one evaluator. No filter or sampling; re-evaluates what was
    evaluated before."""
    if (task is None) == (evaluator is None):
        raise RunRejected("invalid", "evaluate with a task or with an evaluator")
    if granularity not in Granularity.values:
        raise RunRejected("invalid_granularity", f"must be one of {', '.join(Granularity.values)}")
    keys = [str(k) for k in dict.fromkeys(keys) if str(k).strip()]
    if not keys:
        raise RunRejected("no_items", "select at least one row")
    if len(keys) > MANUAL_MAX_ITEMS:
        raise RunRejected("too_many_items", f"at most {MANUAL_MAX_ITEMS} items per manual run")
    if task is not None:
        config = run_config(task=task)
        config["granularity"] = granularity
        config["filter"], config["sampling_rate"] = "", 100.0
        assert task.project is not None  # chosen in the trace browser: a project's task
        project = task.project
    else:
        assert evaluator is not None
        config = run_config(
            task=None,
            evaluators=[TaskEvaluatorInput(evaluator=evaluator)],
            granularity=granularity,
        )
    if not config["evaluators"]:
        raise RunRejected("no_evaluators", "nothing to evaluate with")
    providers_check(config)
    found, missing = targets_by_keys(project_id=project.pk, granularity=granularity, keys=keys)
    if missing:
        shown = ", ".join(missing[:20]) + (" …" if len(missing) > 20 else "")
        raise RunRejected("not_found", f"not in project {project.name}: {shown}")
    run = TaskRun.objects.create(
        task=task,
        project=project,
        kind=RunKind.MANUAL,
        config=config,
        created_by=user if user and user.is_authenticated else None,
    )
    total = items_insert(run, found, dedupe_task_id=None)
    TaskRun.objects.filter(pk=run.pk).update(matched=total, sampled=total, planned=True)
    run.refresh_from_db()
    run_log(run, f"manual run queued: {total} {granularity}s")
    run_enqueue(run)
    return run


# --- runs: ending them ------------------------------------------------------------------------


def _shards_close(run: TaskRun, now: datetime) -> None:
    """A run that ended closes its open shards: their workers find the run stopped at their
    next write (under the run's lock) and drop what they hold."""
    run.shards.filter(finished_at__isnull=True).update(
        lease_owner="", lease_expires_at=None, finished_at=now
    )


def _release_pending(run: TaskRun) -> int:
    """Unlist a run's unevaluated items, so the task can list them again later."""
    deleted, _ = run.items.filter(status=ItemStatus.PENDING).delete()
    return deleted


@transaction.atomic
def run_cancel(*, run: TaskRun, user: User | None = None) -> TaskRun:
    """Stop a queued or running run; what it evaluated stays. Its remaining items are unlisted."""
    run = TaskRun.objects.select_for_update().get(pk=run.pk)
    if not run.is_active:
        raise RunRejected(
            "not_active",
            f"run #{run.pk} is {run.status}; only a queued or running run can be cancelled",
        )
    now = timezone.now()
    left = _release_pending(run)
    run.status, run.finished_at, run.updated_at = RunStatus.CANCELLED, now, now
    run.save()
    _shards_close(run, now)
    who = f" by {user.get_username()}" if user is not None and user.is_authenticated else ""
    run_log(run, f"cancelled{who}; {left} items left unevaluated", level=RunLogLevel.WARNING)
    return run


@transaction.atomic
def run_fail(*, run_id: int, reason: str, pause_task: bool = False) -> None:
    """Mark a run failed with ``reason``. Its unevaluated items are unlisted and a continuous
    run hands its window back, so nothing is lost once the cause is fixed. ``pause_task``: the
    cause (a bad key, a missing model…) would fail every run, so stop the task too."""
    run = TaskRun.objects.select_for_update().get(pk=run_id)
    if not run.is_active:
        return
    now = timezone.now()
    _release_pending(run)
    run.status, run.error, run.finished_at, run.updated_at = RunStatus.FAILED, reason, now, now
    run.save()
    _shards_close(run, now)
    run_log(run, f"failed: {reason}", level=RunLogLevel.ERROR)
    if run.task_id is None:
        return
    task = Task.objects.select_for_update().get(pk=run.task_id)
    fields = []
    if run.kind == RunKind.CONTINUOUS and run.config.get("cursor_before"):
        before = datetime.fromisoformat(run.config["cursor_before"])
        if task.cursor is None or before < task.cursor:
            task.cursor = before
            fields.append("cursor")
    if pause_task:
        task.status = TaskStatus.PAUSED
        task.paused_reason = f"run #{run.pk} failed: {reason}"
        fields += ["status", "paused_reason"]
    if fields:
        task.updated_at = now
        task.save(update_fields=[*fields, "updated_at"])


def runs_stale(*, now: datetime | None = None) -> list[int]:
    """Runs to dispatch again: a shard's worker vanished (its lease expired), no worker holds
    any shard and none has written for longer than a lease (a message was lost), or queued for
    longer than a lease (its message never arrived)."""
    now = now or timezone.now()
    before = now - timedelta(seconds=lease_seconds())
    expired = TaskRunShard.objects.filter(
        run__status=RunStatus.RUNNING,
        finished_at__isnull=True,
        lease_expires_at__lt=now,
    ).values_list("run_id", flat=True)
    held = TaskRunShard.objects.filter(finished_at__isnull=True, lease_expires_at__gte=now).values(
        "run_id"
    )
    idle = (
        TaskRun.objects.filter(status=RunStatus.RUNNING, updated_at__lt=before)
        .exclude(pk__in=held)
        .values_list("pk", flat=True)
    )
    queued = TaskRun.objects.filter(status=RunStatus.QUEUED, updated_at__lt=before)
    return sorted(set(expired) | set(idle) | set(queued.values_list("pk", flat=True)))


def lease_seconds() -> float:
    return float(getattr(settings, "EVALHUB_RUN_LEASE_SECONDS", 60))


def run_touch(*, run_id: int) -> None:
    TaskRun.objects.filter(pk=run_id).update(updated_at=timezone.now())
