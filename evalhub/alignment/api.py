"""REST routes of the alignment workspace: ``/v1/evaluators/{e}/alignment-runs`` and
``/v1/alignment-runs/{id}`` (its comparison, items, save, golden dataset)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.http import HttpRequest
from ninja import Field, Router, Schema, Status
from ninja.errors import HttpError

from annotations.datasets.services import DatasetInvalid
from evalhub.alignment.models import AlignmentItem, AlignmentRun
from evalhub.alignment.selectors import alignment_comparison, alignment_runs, flip_kind
from evalhub.alignment.services import (
    DEFAULT_ITEMS,
    AlignmentInvalid,
    alignment_estimate,
    alignment_golden_dataset,
    alignment_run_create,
    alignment_run_resume,
    alignment_save,
)
from evalhub.calibration.api import EstimateOut, MetricsOut, metrics_out
from evalhub.calibration.estimate import estimate_out
from evalhub.core.paging import Page, Pages, page_from_id, page_newest, paged
from evalhub.evaluators.models import Evaluator
from evalhub.evaluators.selectors import evaluator_get
from evalhub.identity.auth import request_principal, request_user
from tracing.api.mutations import project_from_path

router = Router(tags=["alignment"])


def _evaluator(ident: str) -> Evaluator:
    evaluator = evaluator_get(ident)
    if evaluator is None:
        raise HttpError(404, f"evaluator {ident!r} not found")
    return evaluator


def _run(run_id: int) -> AlignmentRun:
    run = (
        AlignmentRun.objects.select_related("evaluator", "project", "base_version", "saved_version")
        .filter(pk=run_id)
        .first()
    )
    if run is None:
        raise HttpError(404, f"alignment run {run_id} not found")
    return run


class AlignmentRunIn(Schema):
    project: str = Field(..., description="The project whose labelled items to use (name or id)")
    draft: dict[str, Any] = Field(..., description="The draft definition (as a version's)")
    max_items: int = Field(DEFAULT_ITEMS, description="At most this many labelled items")


class ComparisonOut(Schema):
    both: int = Field(..., description="Items with people's label, a current and a draft result")
    better: bool | None = Field(..., description="The draft agrees with people more (kappa)")
    current: MetricsOut
    draft: MetricsOut
    draft_all: MetricsOut = Field(..., description="The draft on every item it judged")
    flips: dict[str, int] = Field(..., description="fixed, broken, changed, new")


class AlignmentRunOut(Schema):
    id: int
    evaluator: str
    project: str
    base_version: int | None
    status: str
    total: int
    done: int
    errored: int
    skipped: int = Field(..., description="Items left out: people disagree without a majority")
    prompt_tokens: int
    completion_tokens: int
    cost: float
    error: str
    saved_version: int | None
    draft: dict[str, Any]
    created_at: datetime
    finished_at: datetime | None
    comparison: ComparisonOut | None = None


def _out(run: AlignmentRun, *, comparison: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": run.pk,
        "evaluator": run.evaluator.name,
        "project": run.project.name,
        "base_version": run.base_version.number if run.base_version else None,
        "status": run.status,
        "total": run.total,
        "done": run.done,
        "errored": run.errored,
        "skipped": run.skipped,
        "prompt_tokens": run.prompt_tokens,
        "completion_tokens": run.completion_tokens,
        "cost": run.cost,
        "error": run.error,
        "saved_version": run.saved_version.number if run.saved_version else None,
        "draft": run.draft,
        "created_at": run.created_at,
        "finished_at": run.finished_at,
    }
    if comparison:
        found = alignment_comparison(run=run)
        body["comparison"] = {
            "both": found.both,
            "better": found.better,
            "current": metrics_out(found.current),
            "draft": metrics_out(found.draft),
            "draft_all": metrics_out(found.draft_all),
            "flips": found.flips,
        }
    return body


@router.post(
    "/evaluators/{name:ident}/alignment-runs",
    response={201: AlignmentRunOut},
    url_name="alignment_runs_create",
)
def alignment_runs_create(request: HttpRequest, ident: str, body: AlignmentRunIn) -> Status:
    """Run a draft of the evaluator's next version over the items people labelled with its
    results' name in ``project``, on a worker; poll ``GET /v1/alignment-runs/{id}``."""
    evaluator = _evaluator(ident)
    project = project_from_path(body.project)
    try:
        run = alignment_run_create(
            evaluator=evaluator,
            project=project,
            draft=body.draft,
            user=request_user(request),
            admin=request_principal(request).is_admin,
            max_items=body.max_items,
        )
    except AlignmentInvalid as exc:
        raise HttpError(422, str(exc)) from None
    return Status(201, _out(_run(run.pk)))


@router.get(
    "/evaluators/{name:ident}/alignment-runs",
    response=list[AlignmentRunOut],
    url_name="alignment_runs_list",
)
@paged()
def alignment_runs_list(request: HttpRequest, ident: str) -> Pages:
    """The evaluator's alignment runs, newest first, a page at a time."""
    runs = alignment_runs(evaluator=_evaluator(ident))

    def pages(*, cursor: str | None, limit: int) -> Page[dict[str, Any]]:
        return page_newest(runs, cursor=cursor, limit=limit).map(_out)

    return pages


@router.get(
    "/alignment-runs/{alignment_id}", response=AlignmentRunOut, url_name="alignment_run_get"
)
def alignment_run_get(request: HttpRequest, alignment_id: int) -> dict[str, Any]:
    """The run with its comparison so far: the draft's agreement with people beside the
    current version's on the same items, and how many answers flip which way."""
    return _out(_run(alignment_id), comparison=True)


def _item_out(item: AlignmentItem) -> dict[str, Any]:
    return {
        "target_kind": item.target_kind,
        "target_id": item.target_key,
        "status": item.status,
        "human_label": item.human_label,
        "current_label": item.current_label,
        "current_version": item.current_version,
        "draft_label": item.draft_label,
        "draft_score": item.draft_score,
        "draft_explanation": item.draft_explanation,
        "flip": flip_kind(item),
        "error": item.error,
        "prompt_tokens": item.prompt_tokens,
        "completion_tokens": item.completion_tokens,
        "latency_ms": item.latency_ms,
    }


@router.get(
    "/alignment-runs/{alignment_id}/items",
    response=list[dict[str, Any]],
    url_name="alignment_run_items",
)
@paged()
def alignment_run_items(request: HttpRequest, alignment_id: int) -> Pages:
    """The run's items in order, a page at a time, each a flat row: people's label, the
    current and the draft's label, the flip."""
    items = _run(alignment_id).items.order_by("id")

    def pages(*, cursor: str | None, limit: int) -> Page[dict[str, Any]]:
        return page_from_id(items, cursor=cursor, limit=limit, descending=False).map(_item_out)

    return pages


class SavedOut(Schema):
    evaluator: str
    version: int


@router.post(
    "/alignment-runs/{alignment_id}/save", response=SavedOut, url_name="alignment_run_save"
)
def alignment_run_save(request: HttpRequest, alignment_id: int) -> dict[str, Any]:
    """Save the completed run's draft as the evaluator's next version."""
    run = _run(alignment_id)
    try:
        version = alignment_save(
            run=run, user=request_user(request), admin=request_principal(request).is_admin
        )
    except AlignmentInvalid as exc:
        raise HttpError(409, str(exc)) from None
    return {"evaluator": run.evaluator.name, "version": version.number}


class ResumedOut(Schema):
    id: int
    sent: bool = Field(..., description="False: the run is finished or a worker holds it")
    status: str


@router.post(
    "/alignment-runs/{alignment_id}/resume", response=ResumedOut, url_name="alignment_run_resume"
)
def alignment_run_resume_post(request: HttpRequest, alignment_id: int) -> dict[str, Any]:
    """Send a queued run, or one whose worker stopped renewing its lease, to a worker again
    (the beat sweeper does the same by itself); items already judged are not judged again."""
    run = _run(alignment_id)
    sent = alignment_run_resume(run=run)
    run.refresh_from_db()
    return {"id": run.pk, "sent": sent, "status": run.status}


class GoldenIn(Schema):
    name: str = Field(..., description="The dataset (created when there is none)")


class GoldenOut(Schema):
    dataset: str
    created: bool
    added: int
    skipped: int


@router.post(
    "/alignment-runs/{alignment_id}/golden-dataset",
    response=GoldenOut,
    url_name="alignment_run_golden",
)
def alignment_run_golden(request: HttpRequest, alignment_id: int, body: GoldenIn) -> dict[str, Any]:
    """Copy the run's labelled items, with people's labels as the expected output, into a
    dataset of golden examples."""
    try:
        added = alignment_golden_dataset(
            run=_run(alignment_id), name=body.name, user=request_user(request)
        )
    except (DatasetInvalid, AlignmentInvalid) as exc:
        raise HttpError(422, str(exc)) from None
    return {
        "dataset": added.dataset.name,
        "created": added.created,
        "added": added.added,
        "skipped": added.skipped,
    }


@router.post(
    "/evaluators/{name:ident}/alignment-estimate",
    response=EstimateOut,
    url_name="alignment_estimate",
)
def alignment_estimate_get(
    request: HttpRequest, ident: str, body: AlignmentRunIn
) -> dict[str, Any]:
    """Before an alignment run: its items, judge calls, tokens, cost and expected duration
    (the body of ``POST /v1/evaluators/{e}/alignment-runs``). Nothing is written."""
    try:
        estimate = alignment_estimate(
            evaluator=_evaluator(ident),
            project=project_from_path(body.project),
            draft=body.draft,
            user=request_user(request),
            admin=request_principal(request).is_admin,
            max_items=body.max_items,
        )
    except AlignmentInvalid as exc:
        raise HttpError(422, str(exc)) from None
    return estimate_out(estimate)
