"""A task whose target is a dataset: every new experiment on the dataset is scored by the
task's evaluators, on the task engine (leases, the provider limiter, retries, cost, run logs).

The engine asks this module, through its one seam (``evalhub.tasks.hooks.run_target``):

- ``plan``: at each continuous step, the next experiment on the dataset — made after the task,
  finished (a prompt experiment completed; an SDK experiment quiet for the task's quiet period)
  — with runs the task has not scored yet; one task run per experiment, its id in the run's
  config (the run page's "View runs" leads to it).
- ``inputs``: what each evaluator reads of an experiment run. Variables resolve against the
  run first — ``input``, ``output``, ``reference`` (the expected output), ``metadata`` and
  ``metadata.<key>`` (the example's) — and every other source (``attributes.<path>``,
  ``trace.trajectory``, ``documents``, ``name``, ``latency_ms``, ``model``, ``status``) against
  the root span of the run's trace, when the run was traced.
- ``write``: each result as the run's evaluation under the evaluator's name (what the
  experiment page and the comparison show).

A prompt experiment that completes asks for its dataset tasks' step at once
(``dataset_tasks_nudge``), instead of waiting for the next beat tick.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Final

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Q

from annotations.datasets.models import DatasetExampleRevision
from evalhub.core.jobs import job_send
from evalhub.evaluators.definition import EvaluatorConfigError, config_parse
from evalhub.evaluators.variables import is_missing, path_get
from evalhub.experiments.models import Experiment, ExperimentRun, ExperimentStatus
from evalhub.experiments.selectors import revisions_of
from evalhub.experiments.services import ScoredRun, evaluations_store
from evalhub.tasks.hooks import target_register
from evalhub.tasks.models import EXPERIMENT_RUN, TargetKind, Task, TaskRunItem, TaskStatus
from evalhub.tasks.planning import Candidate
from tracing.models import Span, Trace

DEFAULT_QUIET_SECONDS: Final = 5
"""How long an SDK experiment (whose runs arrive over the API) gets no new run before a
dataset task scores it, unless the task sets its own quiet period."""

RUN_SOURCES: Final = ("input", "output", "reference", "metadata")
TASK_CONTINUOUS_STEP: Final = "evalhub.task_continuous_step"
TASK_INTERVAL_SECONDS: Final = 10
"""How often the beat looks for new experiments (a completed prompt experiment asks at once)."""


def _unwrap(value: Any) -> Any:
    """``{"question": "..."}`` reads as its one value; other objects stay objects."""
    if isinstance(value, Mapping) and len(value) == 1:
        return next(iter(value.values()))
    return value


def run_sources(run: ExperimentRun, revision: DatasetExampleRevision) -> dict[str, Any]:
    """What variables read of an experiment run, by source."""
    return {
        "input": _unwrap(revision.input),
        "output": run.output,
        "reference": _unwrap(revision.output),
        "metadata": revision.metadata or {},
    }


def variable_values(mapping: Mapping[str, str], sources: Mapping[str, Any]) -> dict[str, Any]:
    """Each variable (name → source) whose source is a field of the run, with its value; the
    others are left to the run's trace span. ``metadata`` is always given (code checks read
    it whole)."""
    values: dict[str, Any] = {"metadata": sources["metadata"]}
    for name, source in mapping.items():
        head, _, rest = source.partition(".")
        if head not in RUN_SOURCES or (rest and head != "metadata"):
            continue
        value = path_get(sources[head], rest) if rest else sources[head]
        values[name] = None if is_missing(value) else value
    return values


def _mapping(evaluator: Any) -> dict[str, str]:
    """The evaluator's variable mapping with the task's laid over it."""
    config = evaluator.version.config
    try:
        parsed = config_parse(
            {**config, "variables": {**config.get("variables", {}), **evaluator.variables}}
        )
    except EvaluatorConfigError:
        return {}
    return dict(parsed.mapping())


def trace_roots(trace_ids: list[str]) -> dict[str, Span]:
    """Trace id → its root span, for the traces that exist and have one."""
    roots = dict(
        Trace.objects.filter(
            trace_id__in=[t for t in trace_ids if t], root_span_id__isnull=False
        ).values_list("root_span_id", "trace_id")
    )
    spans = Span.objects.filter(span_id__in=list(roots), trace__trace_id__in=roots.values())
    return {
        span.trace.trace_id: span for span in spans.select_related("trace", "session", "project")
    }


class DatasetTarget:
    """The ``dataset`` target of tasks (see the module's docstring)."""

    def plan(self, *, task: Task, now: datetime) -> tuple[dict[str, Any], list[Any]] | None:
        if task.dataset_id is None:  # not a dataset task
            return None
        quiet = task.quiet_seconds if task.quiet_seconds is not None else DEFAULT_QUIET_SECONDS
        ready = (
            Experiment.objects.filter(dataset_id=task.dataset_id, created_at__gte=task.created_at)
            .filter(
                Q(status=ExperimentStatus.COMPLETED)
                | Q(status=ExperimentStatus.OPEN, updated_at__lte=now - timedelta(seconds=quiet))
            )
            .order_by("id")
        )
        listed = TaskRunItem.objects.filter(dedupe_task=task, target_kind=EXPERIMENT_RUN)
        for experiment in ready:
            runs = (
                ExperimentRun.objects.filter(experiment=experiment, error__isnull=True)
                .exclude(pk__in=listed.values("target_pk"))
                .order_by("id")
                .values_list("pk", "example_id", "repetition_number", "start_time")
            )
            candidates = [
                Candidate(pk=pk, key=f"example {example} #{repetition}", start_time=start)
                for pk, example, repetition, start in runs
            ]
            if candidates:
                extra = {
                    "target": TargetKind.DATASET,
                    "experiment_id": experiment.pk,
                    "experiment_name": experiment.name,
                    "dataset_id": task.dataset_id,
                }
                return extra, candidates
        return None

    def inputs(
        self, *, run: Any, pks: list[int], evaluators: list[Any]
    ) -> dict[int, tuple[Span | None, list[dict[str, Any]]]]:
        rows = list(ExperimentRun.objects.filter(pk__in=pks).select_related("experiment"))
        if not rows:
            return {}
        experiment = rows[0].experiment
        revisions = revisions_of(experiment=experiment, example_ids=[r.example_id for r in rows])
        roots = trace_roots([r.trace_id for r in rows])
        mappings = [_mapping(e) for e in evaluators]
        found: dict[int, tuple[Span | None, list[dict[str, Any]]]] = {}
        for row in rows:
            revision = revisions.get(row.example_id)
            if revision is None:
                continue
            sources = run_sources(row, revision)
            values = [variable_values(mapping, sources) for mapping in mappings]
            found[row.pk] = (roots.get(row.trace_id), values)
        return found

    def write(self, *, run: Any, results: list[tuple[Any, str, str, Any]]) -> None:
        """The results as the runs' evaluations (``evaluations_store``: a statement a batch)."""
        metadata = {"task_id": run.task_id, "task_run_id": run.pk}
        evaluations_store(
            scored=[
                ScoredRun(item.target_pk, name, kind, result, metadata)
                for item, name, kind, result in results
            ]
        )


def dataset_tasks_nudge(*, experiment: Experiment) -> None:
    """After the commit, a continuous step for each active task on the experiment's dataset
    (the experiment is scored now, not at the next beat tick)."""
    ids = list(
        Task.objects.filter(
            target=TargetKind.DATASET, dataset_id=experiment.dataset_id, status=TaskStatus.ACTIVE
        ).values_list("pk", flat=True)
    )
    for task_id in ids:
        transaction.on_commit(partial(job_send, TASK_CONTINUOUS_STEP, task_id))


def dataset_task_save(
    *,
    dataset: Any,
    name: str,
    evaluators: list[Any],
    variables: Mapping[int, Mapping[str, str]] | None = None,
    provider: Any = None,
    model: str = "",
    quiet_seconds: int | None = None,
    description: str = "",
    task: Task | None = None,
    user: User | None = None,
) -> Task:
    """Create (or, with ``task``, change) a task that scores every new experiment on
    ``dataset``. Raises ``TaskInvalid`` naming the field; nothing is written then."""
    from evalhub.tasks.services import TaskEvaluatorInput, TaskInput, task_create, task_update

    variables = variables or {}
    entries = [
        TaskEvaluatorInput(evaluator=e, variables=dict(variables.get(e.pk, {}))) for e in evaluators
    ]
    data = TaskInput(
        name=name,
        project=None,
        target=TargetKind.DATASET,
        dataset=dataset,
        evaluators=entries,
        continuous=True,
        interval_seconds=TASK_INTERVAL_SECONDS,
        quiet_seconds=quiet_seconds,
        provider=provider,
        model=model,
        description=description,
    )
    if task is None:
        return task_create(data=data, user=user)
    changes = {
        "name": name,
        "evaluators": entries,
        "provider": provider,
        "model": model,
        "quiet_seconds": quiet_seconds,
        "description": description,
    }
    return task_update(task=task, changes=changes)


def dataset_tasks(*, dataset: Any) -> Any:
    """The tasks on ``dataset``, newest first, with their evaluators."""
    return (
        Task.objects.filter(target=TargetKind.DATASET, dataset=dataset)
        .prefetch_related("task_evaluators__evaluator")
        .order_by("-created_at", "-id")
    )


def register() -> None:
    target_register(TargetKind.DATASET, DatasetTarget())
