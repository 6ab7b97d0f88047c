"""REST routes of shadow versions: ``/v1/tasks/{id}/shadows`` (start, list) and
``/v1/shadows/{id}`` (the shadow, its comparison, promote, discard)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from ninja import Field, Router, Schema, Status
from ninja.errors import HttpError

from evalhub.alignment.models import AlignmentRun
from evalhub.calibration.api import MetricsOut, metrics_out
from evalhub.evaluators.selectors import evaluator_get
from evalhub.identity.auth import request_principal, request_user
from evalhub.shadow.models import ShadowVersion
from evalhub.shadow.selectors import shadow_comparison, shadow_items, shadow_list
from evalhub.shadow.services import ShadowInvalid, shadow_discard, shadow_promote, shadow_start
from evalhub.tasks.models import Task
from evalhub.tasks.selectors import task_get

router = Router(tags=["shadow versions"])


def _task(task_id: int) -> Task:
    task = task_get(task_id)
    if task is None:
        raise HttpError(404, f"no task #{task_id}")
    return task


def _shadow(shadow_id: int) -> ShadowVersion:
    shadow = shadow_list().filter(pk=shadow_id).first()
    if shadow is None:
        raise HttpError(404, f"no shadow version #{shadow_id}")
    return shadow


class ShadowIn(Schema):
    evaluator: str = Field(..., description="One of the task's evaluators (name or id)")
    candidate: dict[str, Any] | None = Field(
        None, description="The candidate definition (as a version's); else alignment_id's draft"
    )
    alignment_id: int | None = Field(None, description="An alignment run whose draft to run")


class ShadowOut(Schema):
    id: int
    task_id: int
    evaluator: str
    status: str = Field(..., description="running, promoted or discarded")
    base_version: int | None = Field(..., description="The active version when it started")
    promoted_version: int | None
    alignment_id: int | None
    candidate: dict[str, Any]
    results: int
    created_at: datetime
    finished_at: datetime | None


def _out(shadow: ShadowVersion) -> dict[str, Any]:
    return {
        "id": shadow.pk,
        "task_id": shadow.task_id,
        "evaluator": shadow.evaluator.name,
        "status": shadow.status,
        "base_version": shadow.base_version.number if shadow.base_version else None,
        "promoted_version": shadow.promoted_version.number if shadow.promoted_version else None,
        "alignment_id": shadow.alignment_run_id,
        "candidate": shadow.candidate,
        "results": shadow.results.count(),
        "created_at": shadow.created_at,
        "finished_at": shadow.finished_at,
    }


@router.post("/tasks/{task_id}/shadows", response={201: ShadowOut}, url_name="shadows_create")
def shadows_create(request: HttpRequest, task_id: int, body: ShadowIn) -> Status:
    """Run a candidate version of one of the task's evaluators beside the active version, on
    the same items of the task's next runs; its results are kept apart (only here)."""
    task = _task(task_id)
    evaluator = evaluator_get(body.evaluator)
    if evaluator is None:
        raise HttpError(422, f"evaluator: no evaluator {body.evaluator!r}")
    alignment_run = None
    if body.alignment_id is not None:
        alignment_run = AlignmentRun.objects.filter(pk=body.alignment_id).first()
        if alignment_run is None:
            raise HttpError(422, f"alignment_id: no alignment run #{body.alignment_id}")
    try:
        shadow = shadow_start(
            task=task,
            evaluator=evaluator,
            candidate=body.candidate,
            alignment_run=alignment_run,
            user=request_user(request),
            admin=request_principal(request).is_admin,
        )
    except ShadowInvalid as exc:
        raise HttpError(409 if "running shadow" in exc.message else 422, str(exc)) from None
    except PermissionDenied as exc:
        raise HttpError(403, f"candidate: {exc}") from None
    return Status(201, _out(_shadow(shadow.pk)))


class ShadowList(Schema):
    data: list[ShadowOut]


@router.get("/tasks/{task_id}/shadows", response=ShadowList, url_name="shadows_list")
def shadows_list(request: HttpRequest, task_id: int) -> dict[str, Any]:
    """The task's shadows, newest first (the last 100)."""
    return {"data": [_out(s) for s in shadow_list(task=_task(task_id))[:100]]}


@router.get("/shadows/{shadow_id}", response=ShadowOut, url_name="shadow_get")
def shadow_get(request: HttpRequest, shadow_id: int) -> dict[str, Any]:
    return _out(_shadow(shadow_id))


class BucketOut(Schema):
    start: datetime
    active: dict[str, int] = Field(..., description="The active version's labels: counts")
    candidate: dict[str, int]
    active_score: float | None = Field(..., description="Mean score")
    candidate_score: float | None


class ItemOut(Schema):
    target_kind: str
    target_id: str
    trace_id: str
    span_id: str
    when: datetime | None
    human_label: str | None = Field(..., description="People's majority label")
    active_label: str | None
    active_version: int | None
    candidate_label: str | None
    candidate_score: float | None
    candidate_explanation: str
    error: str
    flip: str | None = Field(..., description="fixed, broken, changed or null")


class ComparisonOut(Schema):
    shadow: ShadowOut
    judged: int = Field(..., description="Items the candidate judged")
    errored: int
    better: bool | None = Field(..., description="The candidate agrees with people more (κ)")
    between: MetricsOut = Field(..., description="Active (rows) against candidate (columns)")
    active: MetricsOut = Field(..., description="People against the active version")
    candidate: MetricsOut = Field(..., description="People against the candidate")
    flips: dict[str, int]
    buckets: list[BucketOut]
    items: list[ItemOut] | None = Field(None, description="With items=true: every item")


@router.get("/shadows/{shadow_id}/comparison", response=ComparisonOut, url_name="shadow_comparison")
def shadow_comparison_get(
    request: HttpRequest,
    shadow_id: int,
    bucket: Literal["hour", "day", "week"] = "hour",
    items: bool = False,
) -> dict[str, Any]:
    """The candidate beside the active version: distributions over time, agreement with each
    other and with people (κ with a 95 % interval, pairs), flips; ``items=true`` adds every
    item with both answers and people's label."""
    shadow = _shadow(shadow_id)
    found = shadow_comparison(shadow=shadow, bucket=bucket)
    body: dict[str, Any] = {
        "shadow": _out(shadow),
        "judged": found.judged,
        "errored": found.errored,
        "better": found.better,
        "between": metrics_out(found.between),
        "active": metrics_out(found.active),
        "candidate": metrics_out(found.candidate),
        "flips": found.flips,
        "buckets": [
            {
                "start": b.start,
                "active": dict(b.active),
                "candidate": dict(b.candidate),
                "active_score": b.active_score,
                "candidate_score": b.candidate_score,
            }
            for b in found.buckets
        ],
    }
    if items:
        body["items"] = [
            {
                "target_kind": i.result.target_kind,
                "target_id": i.result.target_key,
                "trace_id": i.result.trace_id,
                "span_id": i.result.span_id,
                "when": i.result.when,
                "human_label": i.human_label,
                "active_label": i.active_label,
                "active_version": i.active_version,
                "candidate_label": i.result.label,
                "candidate_score": i.result.score,
                "candidate_explanation": i.result.explanation,
                "error": i.result.error,
                "flip": i.flip,
            }
            for i in shadow_items(shadow)
        ]
    return body


class PromotedOut(Schema):
    evaluator: str
    version: int = Field(..., description="The evaluator's version the candidate became")


@router.post("/shadows/{shadow_id}/promote", response=PromotedOut, url_name="shadow_promote")
def shadow_promote_post(request: HttpRequest, shadow_id: int) -> dict[str, Any]:
    """Make the candidate the evaluator's active version (its next version)."""
    shadow = _shadow(shadow_id)
    try:
        version = shadow_promote(
            shadow=shadow, user=request_user(request), admin=request_principal(request).is_admin
        )
    except ShadowInvalid as exc:
        raise HttpError(409, str(exc)) from None
    except PermissionDenied as exc:
        raise HttpError(403, f"candidate: {exc}") from None
    return {"evaluator": shadow.evaluator.name, "version": version.number}


class DiscardedOut(Schema):
    removed: int = Field(..., description="Shadow results removed")


@router.post("/shadows/{shadow_id}/discard", response=DiscardedOut, url_name="shadow_discard")
def shadow_discard_post(request: HttpRequest, shadow_id: int) -> dict[str, Any]:
    """Stop the shadow and remove its results."""
    try:
        removed = shadow_discard(shadow=_shadow(shadow_id))
    except ShadowInvalid as exc:
        raise HttpError(409, str(exc)) from None
    return {"removed": removed}
