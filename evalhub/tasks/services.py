"""Tasks and runs: everything that writes. Views, the API and Celery tasks call these.

Validation happens before anything is written: a bad task raises ``TaskInvalid`` naming the
field; a run that cannot start raises ``RunRejected`` with a machine-readable ``code``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone

from evalhub.evaluators.definition import EvaluatorConfigError, LlmJudgeConfig, config_parse
from evalhub.evaluators.models import Evaluator, EvaluatorKind
from evalhub.providers.models import Provider
from evalhub.tasks.hooks import run_config_extend, run_target
from evalhub.tasks.models import (
    ACTIVE_RUN_STATUSES,
    EXPERIMENT_RUN,
    Granularity,
    ItemStatus,
    RunKind,
    RunLogLevel,
    RunStatus,
    TargetKind,
    Task,
    TaskEvaluator,
    TaskRun,
    TaskRunItem,
    TaskRunLog,
    TaskRunShard,
    TaskStatus,
)
from evalhub.tasks.planning import (
    Candidate,
    Unlisted,
    Window,
    candidates_iter,
    candidates_query,
    sampled,
    targets_by_keys,
)
from tracing.models import Project
from tracing.query import FilterError, compile_filter

logger = logging.getLogger(__name__)

DEFAULT_MAX_ITEMS = 10_000
MAX_ITEMS_LIMIT = 1_000_000
MIN_INTERVAL_SECONDS = 5
MAX_QUIET_SECONDS = 7 * 24 * 3600
MANUAL_MAX_ITEMS = 10_000
_INSERT_BATCH = 1000


class TaskInvalid(ValueError):
    """A task that cannot be saved; ``field`` names the offending field."""

    def __init__(self, field_name: str, message: str) -> None:
        self.field, self.message = field_name, message
        super().__init__(f"{field_name}: {message}")


class RunRejected(Exception):
    """A run that cannot start: ``code`` (e.g. ``task_paused``) and a message for people."""

    def __init__(self, code: str, message: str) -> None:
        self.code, self.message = code, message
        super().__init__(message)


def late_commit_seconds() -> float:
    """How long an ingest transaction may take to commit: continuous runs look back this far
    before their cursor, so a span stamped before the cursor but committed after it is seen."""
    return float(getattr(settings, "EVALHUB_TASK_LATE_COMMIT_SECONDS", 120))


# --- tasks ------------------------------------------------------------------------------------


@dataclass
class TaskEvaluatorInput:
    evaluator: Evaluator
    variables: dict[str, str] = field(default_factory=dict)


@dataclass
class TaskInput:
    """Everything the form and the API can set on a task."""

    name: str
    project: Project | None
    evaluators: list[TaskEvaluatorInput]
    granularity: str = Granularity.SPAN
    filter: str = ""
    sampling_rate: float = 100.0
    continuous: bool = True
    interval_seconds: int = 30
    quiet_seconds: int | None = None
    provider: Provider | None = None
    model: str = ""
    tracing: bool = False
    description: str = ""
    target: str = TargetKind.PROJECT
    dataset: Any = None  # a ``datasets.Dataset`` when ``target`` is a dataset


TASK_FIELDS = (
    "name",
    "target",
    "project",
    "dataset",
    "evaluators",
    "granularity",
    "filter",
    "sampling_rate",
    "continuous",
    "interval_seconds",
    "quiet_seconds",
    "provider",
    "model",
    "tracing",
    "description",
)


def _evaluators_check(data: TaskInput, *, require_provider: bool = True) -> None:
    if not data.evaluators:
        raise TaskInvalid("evaluators", "choose at least one evaluator")
    seen: set[int] = set()
    for entry in data.evaluators:
        evaluator = entry.evaluator
        if evaluator.pk in seen:
            raise TaskInvalid("evaluators", f"{evaluator.name} is listed twice")
        seen.add(evaluator.pk)
        version = evaluator.versions.order_by("-number").first()
        if version is None:
            raise TaskInvalid("evaluators", f"{evaluator.name} has no version")
        variables = {str(k): str(v).strip() for k, v in (entry.variables or {}).items() if v}
        entry.variables = variables
        try:
            config = config_parse(
                {
                    **version.config,
                    "variables": {**version.config.get("variables", {}), **variables},
                }
            )
        except EvaluatorConfigError as exc:
            raise TaskInvalid("evaluators", f"{evaluator.name}: {exc}") from None
        if isinstance(config, LlmJudgeConfig):
            known = set(config.mapping())
            unknown = sorted(set(variables) - known)
            if unknown:
                raise TaskInvalid(
                    "evaluators",
                    f"{evaluator.name}: no variable named {', '.join(unknown)} in its template "
                    f"(it has {', '.join(sorted(known))})",
                )
            if require_provider and data.provider is None and not _provider_available(config):
                raise TaskInvalid(
                    "provider",
                    f"{evaluator.name} has no LLM provider: add one under Settings → AI "
                    "providers or choose one for this task",
                )


def _provider_available(config: LlmJudgeConfig) -> bool:
    if config.provider_id is not None:
        return Provider.objects.filter(pk=config.provider_id).exists()
    return Provider.objects.filter(is_default=True).exists()


def _task_check(
    data: TaskInput, *, instance: Task | None = None, require_provider: bool = True
) -> None:
    name = (data.name or "").strip()
    if not name:
        raise TaskInvalid("name", "is required")
    if len(name) > 200:
        raise TaskInvalid("name", "at most 200 characters")
    data.name = name
    _target_check(data)
    owner = {"dataset": data.dataset} if data.target == TargetKind.DATASET else {}
    taken = Task.objects.filter(**(owner or {"project": data.project}), name=name)
    if instance is not None:
        taken = taken.exclude(pk=instance.pk)
    if taken.exists():
        raise TaskInvalid("name", f"{_owner_text(data)} already has a task named {name}")
    if data.granularity not in Granularity.values:
        raise TaskInvalid("granularity", f"must be one of {', '.join(Granularity.values)}")
    data.filter = (data.filter or "").strip()
    if data.filter:
        try:
            compile_filter(data.filter)
        except FilterError as exc:
            raise TaskInvalid("filter", str(exc)) from None
    try:
        data.sampling_rate = float(data.sampling_rate)
    except (TypeError, ValueError):
        raise TaskInvalid("sampling_rate", "must be a number from 0 to 100") from None
    if not 0 <= data.sampling_rate <= 100:
        raise TaskInvalid("sampling_rate", "must be from 0 to 100 (%)")
    if not MIN_INTERVAL_SECONDS <= int(data.interval_seconds) <= 86_400:
        raise TaskInvalid(
            "interval_seconds", f"must be from {MIN_INTERVAL_SECONDS} s to 86400 s (a day)"
        )
    if data.quiet_seconds is not None and not 0 <= int(data.quiet_seconds) <= MAX_QUIET_SECONDS:
        raise TaskInvalid("quiet_seconds", f"must be from 0 to {MAX_QUIET_SECONDS} s")
    data.tracing = bool(data.tracing)
    data.model = (data.model or "").strip()
    if len(data.model) > 200:
        raise TaskInvalid("model", "at most 200 characters")
    _evaluators_check(data, require_provider=require_provider)


def _target_check(data: TaskInput) -> None:
    """A project task has a project; a dataset task a dataset (and no project, filter or
    granularity: its items are the runs of the dataset's new experiments)."""
    if data.target not in TargetKind.values:
        raise TaskInvalid("target", f"must be one of {', '.join(TargetKind.values)}")
    if data.target == TargetKind.PROJECT:
        if data.project is None:
            raise TaskInvalid("project", "choose a project")
        data.dataset = None
        return
    if data.dataset is None:
        raise TaskInvalid("dataset", "choose a dataset")
    data.project, data.filter, data.granularity = None, "", Granularity.SPAN
    data.tracing = False


def _owner_text(data: TaskInput) -> str:
    if data.target == TargetKind.DATASET:
        return f"dataset {data.dataset.name}"
    return f"project {data.project.name if data.project else ''}"


def _task_apply(task: Task, data: TaskInput) -> None:
    for name in TASK_FIELDS:
        if name != "evaluators":
            setattr(task, name, getattr(data, name))


def _evaluators_save(task: Task, entries: Sequence[TaskEvaluatorInput]) -> None:
    task.task_evaluators.all().delete()
    TaskEvaluator.objects.bulk_create(
        TaskEvaluator(task=task, evaluator=e.evaluator, variables=e.variables, position=i)
        for i, e in enumerate(entries)
    )


@transaction.atomic
def task_create(*, data: TaskInput, user: User | None = None, paused_reason: str = "") -> Task:
    """A new task; continuous runs cover spans ingested from now on. With ``paused_reason``
    it starts paused, and may lack an LLM provider for now (its runs are refused until it has
    one): the demo's task, made before any provider is set up."""
    _task_check(data, require_provider=not paused_reason)
    now = timezone.now()
    task = Task(created_by=user if user and user.is_authenticated else None, created_at=now)
    if paused_reason:
        task.status, task.paused_reason = TaskStatus.PAUSED, paused_reason
    _task_apply(task, data)
    task.updated_at = now
    task.cursor = now
    try:
        with transaction.atomic():
            task.save()
    except IntegrityError:  # a concurrent create took the name
        raise TaskInvalid(
            "name", f"{_owner_text(data)} already has a task named {data.name}"
        ) from None
    _evaluators_save(task, data.evaluators)
    return task


def task_input_of(task: Task) -> TaskInput:
    """The task's current settings, to change some and save (``task_update``)."""
    return TaskInput(
        **{name: getattr(task, name) for name in TASK_FIELDS if name != "evaluators"},
        evaluators=[
            TaskEvaluatorInput(evaluator=te.evaluator, variables=dict(te.variables))
            for te in task.task_evaluators.select_related("evaluator")
        ],
    )


@transaction.atomic
def task_update(*, task: Task, changes: Mapping[str, Any]) -> Task:
    """Change any subset of ``TASK_FIELDS``; runs already made keep their settings. Moving a
    task to another project or granularity starts its continuous cursor afresh."""
    unknown = sorted(set(changes) - set(TASK_FIELDS))
    if unknown:
        raise TaskInvalid(unknown[0], "is not a task field")
    task = Task.objects.select_for_update().get(pk=task.pk)
    data = task_input_of(task)
    for name, value in changes.items():
        setattr(data, name, value)
    _task_check(data, instance=task)
    restart = (
        getattr(data.project, "pk", None) != task.project_id
        or getattr(data.dataset, "pk", None) != task.dataset_id
        or data.granularity != task.granularity
    )
    _task_apply(task, data)
    task.updated_at = timezone.now()
    if restart:
        task.cursor = task.updated_at
    task.save()
    if "evaluators" in changes:
        _evaluators_save(task, data.evaluators)
    return task


@transaction.atomic
def task_pause(*, task: Task, reason: str = "") -> Task:
    """Stop continuous runs (runs already going finish). ``reason``: why, when not a person."""
    Task.objects.filter(pk=task.pk).update(
        status=TaskStatus.PAUSED, paused_reason=reason, updated_at=timezone.now()
    )
    task.refresh_from_db()
    return task


@transaction.atomic
def task_resume(*, task: Task) -> Task:
    """Continuous runs start again from where they stopped: nothing ingested meanwhile is
    missed."""
    Task.objects.filter(pk=task.pk).update(
        status=TaskStatus.ACTIVE, paused_reason="", updated_at=timezone.now()
    )
    task.refresh_from_db()
    return task


@transaction.atomic
def task_delete(*, task: Task) -> None:
    """Delete the task and its runs; the results it wrote stay on the spans."""
    task.delete()


@transaction.atomic
def task_duplicate(*, task: Task, user: User | None = None) -> Task:
    """A paused copy named "<name> (copy)" (then "(copy 2)"…)."""
    data = task_input_of(task)
    base = f"{task.name} (copy"
    number = 1
    while True:
        data.name = f"{base})" if number == 1 else f"{base} {number})"
        owner = {"dataset": task.dataset} if task.on_dataset else {"project": task.project}
        if not Task.objects.filter(**owner, name=data.name).exists():
            break
        number += 1
    copy = task_create(data=data, user=user)
    copy.status = TaskStatus.PAUSED
    copy.save(update_fields=["status"])
    return copy


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


def _providers_check(config: Mapping[str, Any]) -> None:
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
        if not _provider_available(parsed):
            raise RunRejected(
                "provider_missing",
                f"evaluator {entry['name']} has no LLM provider: add one under Settings → AI "
                "providers or set the task's provider",
            )


def _items_insert(
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
    from evalhub.tasks.services import run_dispatch

    run_id = run.pk
    transaction.on_commit(lambda: run_dispatch(run_id))


def run_log(run: TaskRun, message: str, *, level: str = RunLogLevel.INFO, **fields: str) -> None:
    TaskRunLog.objects.create(run=run, level=level, message=message, **fields)


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
    _providers_check(config)
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
    _providers_check(config)
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
    total = _items_insert(run, found, dedupe_task_id=None)
    TaskRun.objects.filter(pk=run.pk).update(matched=total, sampled=total, planned=True)
    run.refresh_from_db()
    run_log(run, f"manual run queued: {total} {granularity}s")
    run_enqueue(run)
    return run


def run_plan(*, run: TaskRun) -> TaskRun:
    """List a backfill's items (idempotent: a re-run after a crash adds what is missing, up to
    the cap)."""
    if run.planned:
        return run
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
        total = _items_insert(
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

        def counting(items: Iterable[Candidate]) -> Iterable[Candidate]:
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
        total = _items_insert(run, chosen, dedupe_task_id=task.pk)
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
    total = _items_insert(run, candidates, dedupe_task_id=task.pk)
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
