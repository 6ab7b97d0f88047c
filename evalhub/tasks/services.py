"""Tasks: everything that writes a task (create, change, pause, resume, duplicate, delete).
Views, the API and the demo call these; runs are made by ``runs``, ``backfill`` and
``continuous``.

Validation happens before anything is written: a bad task raises ``TaskInvalid`` naming the
field.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone

from evalhub.evaluators.definition import EvaluatorConfigError, LlmJudgeConfig, config_parse
from evalhub.evaluators.models import Evaluator
from evalhub.providers.models import Provider
from evalhub.tasks.models import (
    Granularity,
    TargetKind,
    Task,
    TaskEvaluator,
    TaskStatus,
)
from tracing.models import Project
from tracing.query import FilterError, compile_filter

MIN_INTERVAL_SECONDS = 5
MAX_QUIET_SECONDS = 7 * 24 * 3600


class TaskInvalid(ValueError):
    """A task that cannot be saved; ``field`` names the offending field."""

    def __init__(self, field_name: str, message: str) -> None:
        self.field, self.message = field_name, message
        super().__init__(f"{field_name}: {message}")


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
            if require_provider and data.provider is None and not provider_available(config):
                raise TaskInvalid(
                    "provider",
                    f"{evaluator.name} has no LLM provider: add one under Settings → AI "
                    "providers or choose one for this task",
                )


def provider_available(config: LlmJudgeConfig) -> bool:
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
