"""REST route of live calibration: ``GET /v1/evaluators/{evaluator}/calibration``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema, Status
from ninja.errors import HttpError

from annotations.queues.models import LabelingQueue
from evalhub.calibration.estimate import estimate_out, task_backfill_estimate
from evalhub.calibration.models import CalibrationSampling, DisagreementRouting
from evalhub.calibration.routing import (
    RoutingInvalid,
    disagreement_routing_clear,
    disagreement_routing_set,
    disagreements_route,
)
from evalhub.calibration.sampling import (
    SamplingInvalid,
    calibration_sampling_clear,
    calibration_sampling_set,
)
from evalhub.calibration.selectors import (
    calibration_label_rows,
    calibration_rows,
    evaluator_calibration,
)
from evalhub.calibration.stats import Calibration
from evalhub.evaluators.models import Evaluator
from evalhub.evaluators.selectors import evaluator_get
from evalhub.tasks.backfill import DEFAULT_MAX_ITEMS, MAX_ITEMS_LIMIT
from evalhub.tasks.models import Task
from tracing.api.mutations import project_from_path
from tracing.query import FilterError

router = Router(tags=["calibration"])


class CalibrationQuery(Schema):
    project: str | None = Field(None, description="A project's name or id; empty: every project")
    bucket: Literal["hour", "day", "week"] = "day"
    start: datetime | None = Field(None, description="Items that started at or after this")
    end: datetime | None = Field(None, description="Items that started before this")


class IntervalOut(Schema):
    low: float
    high: float


class LabelOut(Schema):
    label: str
    support: int = Field(..., description="Pairs where people gave the label")
    predicted: int = Field(..., description="Pairs where the judge gave it")
    precision: float | None
    precision_ci: IntervalOut | None
    recall: float | None
    recall_ci: IntervalOut | None


class MetricsOut(Schema):
    pairs: int
    labels: list[str]
    matrix: list[list[int]] = Field(..., description="Rows: people's labels; columns: judge's")
    accuracy: float | None
    accuracy_ci: IntervalOut | None = Field(..., description="Wilson 95 %")
    kappa: float | None
    kappa_se: float | None
    kappa_ci: IntervalOut | None = Field(..., description="Fleiss-Cohen-Everitt 95 %")
    per_label: list[LabelOut]


class BucketOut(Schema):
    start: datetime
    metrics: MetricsOut


class VersionOut(Schema):
    version: int | None
    overall: MetricsOut
    buckets: list[BucketOut]


class CalibrationOut(Schema):
    evaluator: str
    project: str | None
    bucket: str
    rule: str = Field(..., description="How labels and results were paired")
    pairs: int
    versions: list[VersionOut]
    rows: list[dict[str, Any]] = Field(..., description="Flat rows: one per version and bucket")
    label_rows: list[dict[str, Any]] = Field(..., description="Flat rows per label")


def metrics_out(metrics: Calibration) -> dict[str, Any]:
    return {
        "pairs": metrics.pairs,
        "labels": metrics.labels,
        "matrix": metrics.matrix,
        "accuracy": metrics.accuracy,
        "accuracy_ci": metrics.accuracy_ci,
        "kappa": metrics.kappa,
        "kappa_se": metrics.kappa_se,
        "kappa_ci": metrics.kappa_ci,
        "per_label": metrics.per_label,
    }


def _aware(moment: datetime | None) -> datetime | None:
    """A time without a zone is UTC."""
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment


@router.get("/evaluators/{name:ident}/calibration", response=CalibrationOut)
def calibration_get(
    request: HttpRequest, ident: str, query: Query[CalibrationQuery]
) -> dict[str, Any]:
    """How each version of the evaluator agrees with people's labels of the same name (the
    agreement page's pairing), over the whole range and per time bucket: accuracy, Cohen's
    kappa, per-label precision and recall, the confusion matrix, 95 % intervals, pairs."""
    evaluator = evaluator_get(ident)
    if evaluator is None:
        raise HttpError(404, f"evaluator {ident!r} not found")
    start, end = _aware(query.start), _aware(query.end)
    if start and end and end <= start:
        raise HttpError(422, "end: must be after start")
    project = project_from_path(query.project) if query.project else None
    calibration = evaluator_calibration(
        project=project,
        name=evaluator.annotation_name,
        bucket=query.bucket,
        start=start,
        end=end,
    )
    return {
        "evaluator": evaluator.name,
        "project": project.name if project is not None else None,
        "bucket": calibration.bucket,
        "rule": calibration.rule,
        "pairs": calibration.pairs,
        "versions": [
            {
                "version": v.version,
                "overall": metrics_out(v.overall),
                "buckets": [
                    {"start": b.start, "metrics": metrics_out(b.calibration)} for b in v.buckets
                ],
            }
            for v in calibration.versions
        ],
        "rows": calibration_rows(calibration),
        "label_rows": calibration_label_rows(calibration),
    }


# --- estimates ---------------------------------------------------------------------------------


class EstimateOut(Schema):
    items: int = Field(..., description="Items the run would evaluate")
    capped: bool = Field(..., description="More items match than the run may take")
    judge_calls: int
    prompt_tokens: int
    completion_tokens: int
    tokens: int
    cost: float | None = Field(..., description="Dollars; null when a model has no price")
    unpriced_models: list[str]
    seconds: float = Field(..., description="Expected duration at the providers' limits")
    judges: list[dict[str, Any]]
    providers: list[dict[str, Any]]
    method: str


class BackfillEstimateIn(Schema):
    data_start_time: datetime = Field(..., description="Spans that started from then...")
    data_end_time: datetime | None = Field(None, description="...until then (default: now)")
    max_spans: int = Field(DEFAULT_MAX_ITEMS, description="At most this many items")


@router.post("/tasks/{task_id}/backfill-estimate", response=EstimateOut)
def backfill_estimate_get(
    request: HttpRequest, task_id: int, body: BackfillEstimateIn
) -> dict[str, Any]:
    """Before a backfill: the items it would evaluate, judge calls, tokens (the prompts
    rendered on a sample of them), cost (the model price table) and the expected duration at
    the provider's limits. Nothing is written."""
    task = Task.objects.select_related("provider").filter(pk=task_id).first()
    if task is None:
        raise HttpError(404, f"task {task_id} not found")
    start, end = _aware(body.data_start_time), _aware(body.data_end_time)
    if end is not None and start is not None and end <= start:
        raise HttpError(422, "data_end_time: must be after data_start_time")
    if not 1 <= body.max_spans <= MAX_ITEMS_LIMIT:
        raise HttpError(422, f"max_spans: must be 1 to {MAX_ITEMS_LIMIT}")
    try:
        estimate = task_backfill_estimate(task=task, start=start, end=end, max_items=body.max_spans)
    except FilterError as exc:
        raise HttpError(422, f"filter: {exc}") from None
    return estimate_out(estimate)


# --- calibration sampling ----------------------------------------------------------------------


class SamplingIn(Schema):
    queue_id: int = Field(..., description="The labeling queue the sampled items go to")
    rate_percent: float = Field(..., description="Share of the judged items, above 0 to 100")
    evaluator: str | None = Field(None, description="Whose label stratifies (default: first)")
    stratify: bool = Field(True, description="Each judge label its share; false: one stratum")


class SamplingOut(Schema):
    task_id: int
    enabled: bool
    queue_id: int | None
    rate_percent: float | None
    evaluator: str | None
    stratify: bool
    strata: dict[str, list[int]] = Field(..., description="label → [items seen, items sent]")


def _sampling_out(config: CalibrationSampling) -> dict[str, Any]:
    return {
        "task_id": config.task_id,
        "enabled": True,
        "queue_id": config.queue_id,
        "rate_percent": config.rate_percent,
        "evaluator": config.evaluator.name if config.evaluator else None,
        "stratify": config.stratify,
        "strata": config.strata,
    }


def _task(task_id: int) -> Task:
    task = Task.objects.filter(pk=task_id).first()
    if task is None:
        raise HttpError(404, f"task {task_id} not found")
    return task


def _queue_and_evaluator(
    queue_id: int, evaluator_ident: str | None
) -> tuple[LabelingQueue, Evaluator | None]:
    """The queue a body names (404 naming ``queue_id``) and its optional judge (404 naming
    ``evaluator``)."""
    queue = LabelingQueue.objects.filter(pk=queue_id).first()
    if queue is None:
        raise HttpError(404, f"queue_id: no queue {queue_id}")
    if evaluator_ident is None:
        return queue, None
    evaluator = evaluator_get(evaluator_ident)
    if evaluator is None:
        raise HttpError(404, f"evaluator: no evaluator {evaluator_ident!r}")
    return queue, evaluator


@router.put("/tasks/{task_id}/calibration-sampling", response=SamplingOut)
def calibration_sampling_put(
    request: HttpRequest, task_id: int, body: SamplingIn
) -> dict[str, Any]:
    """Send a share of the task's judged items, stratified by the judge's label, into a
    labeling queue from now on."""
    task = _task(task_id)
    queue, evaluator = _queue_and_evaluator(body.queue_id, body.evaluator)
    try:
        config = calibration_sampling_set(
            task=task,
            queue=queue,
            rate_percent=body.rate_percent,
            evaluator=evaluator,
            stratify=body.stratify,
        )
    except SamplingInvalid as exc:
        raise HttpError(422, str(exc)) from None
    return _sampling_out(config)


@router.get("/tasks/{task_id}/calibration-sampling", response=SamplingOut)
def calibration_sampling_get(request: HttpRequest, task_id: int) -> dict[str, Any]:
    """The task's calibration sampling (``enabled`` false: none)."""
    task = _task(task_id)
    config = CalibrationSampling.objects.filter(task=task).select_related("evaluator").first()
    if config is None:
        return {
            "task_id": task.pk, "enabled": False, "queue_id": None, "rate_percent": None,
            "evaluator": None, "stratify": True, "strata": {},
        }  # fmt: skip
    return _sampling_out(config)


@router.delete("/tasks/{task_id}/calibration-sampling", response={204: None})
def calibration_sampling_delete(request: HttpRequest, task_id: int) -> Status:
    calibration_sampling_clear(task=_task(task_id))
    return Status(204, None)


# --- disagreements to review ---------------------------------------------------------------------


class RouteIn(Schema):
    project: str = Field(..., description="The project (name or id)")
    queue_id: int = Field(..., description="The review queue")
    judge: bool = Field(True, description="The judge's label differs from a person's")
    people: bool = Field(False, description="Two people's labels differ")


class RoutedOut(Schema):
    disagreements: int
    added: int
    already_queued: int
    other_kind: int = Field(..., description="Disagreements on items the queue does not take")


@router.post("/evaluators/{name:ident}/disagreements/route", response=RoutedOut)
def disagreements_route_post(request: HttpRequest, ident: str, body: RouteIn) -> dict[str, Any]:
    """Add the items where the evaluator's label and a person's (and/or two people's)
    disagree to a review queue (the agreement page's pairing)."""
    evaluator = evaluator_get(ident)
    if evaluator is None:
        raise HttpError(404, f"evaluator {ident!r} not found")
    queue = LabelingQueue.objects.filter(pk=body.queue_id).first()
    if queue is None:
        raise HttpError(404, f"queue_id: no queue {body.queue_id}")
    routed = disagreements_route(
        project=project_from_path(body.project),
        name=evaluator.annotation_name,
        queue=queue,
        judge=body.judge,
        people=body.people,
    )
    return {
        "disagreements": routed.disagreements,
        "added": routed.added,
        "already_queued": routed.already_queued,
        "other_kind": routed.other_kind,
    }


class RoutingIn(Schema):
    queue_id: int = Field(..., description="The review queue (of the task's item kind)")
    judge: bool = Field(True, description="Route items where the judge and a person disagree")
    people: bool = Field(False, description="Route items where two people disagree")
    evaluator: str | None = Field(None, description="Whose labels (default: first LLM judge)")


class RoutingOut(Schema):
    task_id: int
    enabled: bool
    queue_id: int | None
    judge: bool
    people: bool
    evaluator: str | None
    routed: int = Field(..., description="Items it added to the queue so far")


def _routing_out(task: Task, routing: DisagreementRouting | None) -> dict[str, Any]:
    if routing is None:
        return {
            "task_id": task.pk, "enabled": False, "queue_id": None, "judge": False,
            "people": False, "evaluator": None, "routed": 0,
        }  # fmt: skip
    return {
        "task_id": task.pk, "enabled": True, "queue_id": routing.queue_id,
        "judge": routing.judge, "people": routing.people,
        "evaluator": routing.evaluator.name if routing.evaluator else None,
        "routed": routing.routed,
    }  # fmt: skip


@router.put("/tasks/{task_id}/disagreement-routing", response=RoutingOut)
def disagreement_routing_put(request: HttpRequest, task_id: int, body: RoutingIn) -> dict[str, Any]:
    """From now on, as labels arrive on the task's items, route its disagreements (judge vs
    person and/or person vs person) into a review queue."""
    task = _task(task_id)
    queue, evaluator = _queue_and_evaluator(body.queue_id, body.evaluator)
    try:
        routing = disagreement_routing_set(
            task=task, queue=queue, judge=body.judge, people=body.people, evaluator=evaluator
        )
    except RoutingInvalid as exc:
        raise HttpError(422, str(exc)) from None
    return _routing_out(task, routing)


@router.get("/tasks/{task_id}/disagreement-routing", response=RoutingOut)
def disagreement_routing_get(request: HttpRequest, task_id: int) -> dict[str, Any]:
    """The task's disagreement routing (``enabled`` false: none)."""
    task = _task(task_id)
    routing = DisagreementRouting.objects.filter(task=task).select_related("evaluator").first()
    return _routing_out(task, routing)


@router.delete("/tasks/{task_id}/disagreement-routing", response={204: None})
def disagreement_routing_delete(request: HttpRequest, task_id: int) -> Status:
    disagreement_routing_clear(task=_task(task_id))
    return Status(204, None)
