"""The demo's evaluators and task: the demo project's LLM results ("Correctness" and
"Hallucination") are the results of a task, "Demo quality", made from the template library,
with the run that produced them — so the evaluators list, the task's runs, the run's items and
"View traces" all show the same evaluations the trace browser does.

``demo_task_seed`` is called by the demo seeder (``tracing.demo.demo_seed``). It is idempotent:
seeding again finds the evaluators, the task and its run, adds the items that are new, and
re-writes the same results.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from annotations.models import AnnotationSource, AnnotatorKind
from annotations.store.services import AnnotationInput, annotations_upsert
from evalhub.evaluators.models import Evaluator
from evalhub.evaluators.services import evaluator_create_from_template
from evalhub.tasks.models import (
    Granularity,
    ItemStatus,
    RunKind,
    RunStatus,
    Task,
    TaskRun,
    TaskRunItem,
)
from evalhub.tasks.runs import run_config, run_log
from evalhub.tasks.services import TaskEvaluatorInput, TaskInput, task_create
from tracing.models import Project, Span

DEMO_TASK = "Demo quality"
# The demo's evaluator names → the library templates they are made from.
DEMO_EVALUATORS = {"Correctness": "qa_correctness", "Hallucination": "hallucination"}
DEMO_FILTER = "span_kind = 'LLM'"
PAUSED_REASON = (
    "The demo's results came with the demo data. Add an AI provider under Settings → AI "
    "providers, then resume this task (or run a backfill) to evaluate new traces."
)


@dataclass(frozen=True, slots=True)
class DemoResult:
    """One LLM result of the demo on a span, by one of ``DEMO_EVALUATORS``."""

    span_id: str
    evaluator: str
    label: str | None
    score: float | None
    explanation: str | None
    model: str


@dataclass(frozen=True, slots=True)
class DemoTask:
    task: Task
    run: TaskRun
    annotations: int


def _evaluators() -> dict[str, Evaluator]:
    found = {e.name: e for e in Evaluator.objects.filter(name__in=list(DEMO_EVALUATORS))}
    for name, key in DEMO_EVALUATORS.items():
        if name not in found:
            found[name] = evaluator_create_from_template(key=key, name=name)
    return found


def _task(project: Project, evaluators: dict[str, Evaluator]) -> Task:
    task = Task.objects.filter(project=project, name=DEMO_TASK).first()
    if task is not None:
        return task
    data = TaskInput(
        name=DEMO_TASK,
        project=project,
        evaluators=[TaskEvaluatorInput(evaluator=evaluators[name]) for name in DEMO_EVALUATORS],
        filter=DEMO_FILTER,
        continuous=False,
        description="Correctness and hallucination of the demo's answers.",
    )
    return task_create(data=data, paused_reason=PAUSED_REASON)


def _run(task: Task, now: datetime) -> TaskRun:
    run = task.runs.filter(config__demo=True).first()
    if run is not None:
        return run
    run = TaskRun.objects.create(
        task=task,
        project=task.project,
        kind=RunKind.BACKFILL,
        status=RunStatus.COMPLETED,
        config={**run_config(task=task), "demo": True},
        planned=True,
        created_at=now,
        started_at=now,
        finished_at=now,
        updated_at=now,
    )
    run_log(run, "the demo's results, recorded with the demo data")
    return run


@transaction.atomic
def demo_task_seed(
    *, project: Project, results: Sequence[DemoResult], now: datetime | None = None
) -> DemoTask:
    """The demo's evaluators (from the template library), its task and the run whose results
    ``results`` are: written as the task's annotations on the spans, listed as the run's
    items."""
    now = now or timezone.now()
    evaluators = _evaluators()
    task = _task(project, evaluators)
    run = _run(task, now)
    versions = {e["name"]: e for e in run.config["evaluators"]}
    spans = dict(
        Span.objects.filter(project=project, span_id__in={r.span_id for r in results}).values_list(
            "span_id", "pk"
        )
    )
    starts = dict(Span.objects.filter(pk__in=spans.values()).values_list("span_id", "start_time"))
    by_span: dict[str, list[DemoResult]] = {}
    for result in results:
        if result.span_id in spans and result.evaluator in versions:
            by_span.setdefault(result.span_id, []).append(result)
    TaskRunItem.objects.bulk_create(
        [
            TaskRunItem(
                run=run,
                dedupe_task=task,
                target_kind=Granularity.SPAN,
                target_pk=spans[span_id],
                target_key=span_id,
                start_time=starts.get(span_id),
                status=ItemStatus.DONE,
                finished_at=now,
                results=[
                    {
                        "evaluator": r.evaluator,
                        "label": r.label,
                        "score": r.score,
                        "explanation": r.explanation,
                    }
                    for r in items
                ],
            )
            for span_id, items in by_span.items()
        ],
        ignore_conflicts=True,
    )
    inputs = [
        AnnotationInput(
            target_kind="SPAN",
            target_id=r.span_id,
            name=r.evaluator,
            annotator_kind=AnnotatorKind.LLM,
            label=r.label,
            score=r.score,
            explanation=r.explanation or "",
            metadata={
                "evaluator": r.evaluator,
                "version_id": versions[r.evaluator]["version_id"],
                "version": versions[r.evaluator]["version"],
                "model": r.model,
                "run_id": run.pk,
                "task_id": task.pk,
            },
        )
        for items in by_span.values()
        for r in items
    ]
    written = annotations_upsert(items=inputs, source=AnnotationSource.TASK, project=project)
    items = list(run.items.values_list("results", "start_time"))
    evaluated = sum(len(results) for results, _ in items)
    times = [start for _, start in items if start is not None]
    TaskRun.objects.filter(pk=run.pk).update(
        matched=len(items),
        sampled=len(items),
        finished=len(items),
        evaluated=evaluated,
        succeeded=evaluated,
        items_start=min(times, default=None),
        items_end=max(times, default=None),
        data_start=min(times, default=None),
        data_end=max(times, default=None),
    )
    run.refresh_from_db()
    return DemoTask(task=task, run=run, annotations=len(written))
