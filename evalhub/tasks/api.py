"""REST routes for online evaluation tasks and their runs (``/v1/tasks``, ``/v1/runs``).

Errors are ``{"detail": ...}``. An invalid task is a 422 whose ``detail`` starts with the
field (``"filter: ..."``) and whose ``field`` names it; a run that cannot start (or stop) is a
400 (a bad range or cap) or a 409 (the task's state: paused, no provider...) carrying the
service's ``code`` and ``message``. Nothing is written when a request is refused. Times are
ISO 8601 with a time zone.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.http import HttpRequest
from ninja import Field, Query, Router, Schema, Status
from ninja.errors import HttpError
from pydantic import ConfigDict

from evalhub.core.paging import ErrorOut, Page, Pages, cursor_id, page_newest, paged
from evalhub.evaluators.selectors import evaluator_get
from evalhub.identity.auth import request_user
from evalhub.providers.models import Provider
from evalhub.tasks.models import (
    OUTCOME_STATUS,
    ItemOutcome,
    ItemStatus,
    Task,
    TaskRun,
    TaskRunItem,
)
from evalhub.tasks.selectors import (
    run_get,
    run_items,
    run_list,
    run_logs,
    run_progress,
    task_get,
    task_list,
)
from evalhub.tasks.services import (
    DEFAULT_MAX_ITEMS,
    TASK_FIELDS,
    RunRejected,
    TaskEvaluatorInput,
    TaskInput,
    TaskInvalid,
    run_backfill_create,
    run_cancel,
    task_create,
    task_delete,
    task_pause,
    task_resume,
    task_update,
)
from tracing.models import Project
from tracing.store.selectors import project_get

router = Router(tags=["tasks"])

_OUTCOME_HELP = "succeeded, errored, skipped or pending"
DEFAULT_LOGS_LIMIT = 100
MAX_LOGS_LIMIT = 1000
MAX_DESCRIPTION = 5000  # as on the task form

# How a refused run answers: the request's own values are wrong (400), or the task's or the
# run's state stands in the way (409).
_REJECTED_STATUS = {
    "invalid_range": 400,
    "range_in_future": 400,
    "invalid_max_spans": 400,
    "task_paused": 409,
    "no_evaluators": 409,
    "provider_missing": 409,
    "not_active": 409,
}


# --- schemas ----------------------------------------------------------------------------------


class _Strict(Schema):
    """Input whose unknown keys are refused: a misspelt field is an error, not ignored."""

    model_config = ConfigDict(extra="forbid")


class TaskEvaluatorIn(_Strict):
    evaluator: int | str = Field(..., description="The evaluator's id or name")
    variables: dict[str, str] = Field(
        default_factory=dict,
        description="Template variable → source (e.g. {'output': 'attributes.output.value'})",
    )


class BackfillIn(_Strict):
    data_start_time: datetime = Field(..., description="Spans that started from then…")
    data_end_time: datetime | None = Field(None, description="…until then (default: now)")
    max_spans: int = Field(DEFAULT_MAX_ITEMS, description="At most this many items")


class TaskIn(_Strict):
    name: str
    target: str = Field(
        "project", description="project (its spans) or dataset (its new experiments' runs)"
    )
    project: str | None = Field(None, description="The project's name (or id)")
    dataset: str | None = Field(None, description="The dataset's name (or id), for a dataset task")
    evaluators: list[TaskEvaluatorIn | int | str] = Field(
        ..., description="Evaluators with their variable mapping; a bare id or name maps none"
    )
    granularity: str = Field("span", description="span, trace or session")
    filter: str = Field("", description="Which items to evaluate, in the filter language")
    sampling_rate: float = Field(100.0, description="Percent of matching items, 0 to 100")
    continuous: bool = Field(True, description="Evaluate new data as it arrives")
    interval_seconds: int = Field(30, description="How often continuous runs look for new data")
    quiet_seconds: int | None = Field(
        None, description="Wait this long after a trace's / session's last span (default 60/600)"
    )
    provider: int | str | None = Field(None, description="LLM provider id or name")
    model: str = Field("", description="Model for LLM evaluators (default: the provider's)")
    tracing: bool = Field(
        False, description="Record each judge call as an LLM span in '<project> · judge traces'"
    )
    description: str = Field("", max_length=MAX_DESCRIPTION)
    backfill: BackfillIn | None = Field(None, description="Also start a backfill run")


class TaskPatch(_Strict):
    """Any subset of the fields; ``quiet_seconds`` and ``provider`` may be set to null."""

    name: str | None = None
    project: str | None = None
    dataset: str | None = None
    evaluators: list[TaskEvaluatorIn | int | str] | None = None
    granularity: str | None = None
    filter: str | None = None
    sampling_rate: float | None = None
    continuous: bool | None = None
    interval_seconds: int | None = None
    quiet_seconds: int | None = None
    provider: int | str | None = None
    model: str | None = None
    tracing: bool | None = None
    description: str | None = Field(None, max_length=MAX_DESCRIPTION)


class RunIn(_Strict):
    data_start_time: datetime
    data_end_time: datetime | None = Field(None, description="Default: now")
    max_spans: int = DEFAULT_MAX_ITEMS


class TaskEvaluatorOut(Schema):
    evaluator: str
    evaluator_id: int
    annotation_name: str
    variables: dict[str, str]


class TaskOut(Schema):
    id: int
    name: str
    target: str
    project: str | None
    project_id: int | None
    dataset: str | None
    dataset_id: int | None
    description: str
    status: str
    paused_reason: str
    evaluators: list[TaskEvaluatorOut]
    granularity: str
    filter: str
    sampling_rate: float
    continuous: bool
    interval_seconds: int
    quiet_seconds: int | None
    effective_quiet_seconds: int
    provider: str | None
    provider_id: int | None
    model: str
    tracing: bool
    last_checked_at: datetime | None
    created_at: datetime
    updated_at: datetime


class TaskCreatedOut(TaskOut):
    backfill_run_id: int | None


class RunCountsOut(Schema):
    matched: int
    sampled: int
    evaluated: int
    succeeded: int
    errored: int
    skipped: int
    total: int
    done: int
    percent: float
    prompt_tokens: int
    completion_tokens: int
    cost: float


class RunOut(Schema):
    id: int
    task_id: int | None
    task: str | None
    project: str | None
    project_id: int | None
    experiment_id: int | None = Field(None, description="The experiment a dataset task scored")
    kind: str
    status: str
    active: bool
    evaluators: list[str]
    data_start_time: datetime | None
    data_end_time: datetime | None
    items_start_time: datetime | None
    items_end_time: datetime | None
    max_spans: int | None
    counts: RunCountsOut
    error: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration_seconds: float | None


class RunLogOut(Schema):
    id: int
    time: datetime
    level: str
    message: str
    count: int = Field(1, description="Items this line stands for (a reason items were skipped)")
    target_kind: str
    target_key: str
    evaluator: str


class RunDetailOut(RunOut):
    logs: list[RunLogOut]
    logs_total: int
    logs_next_after: int | None = Field(
        None, description="Pass as logs_after for the next log entries; null at the end"
    )


class RunItemResultOut(Schema):
    evaluator: str
    label: str | None = None
    score: float | None = None
    explanation: str | None = None
    latency_ms: float | None = None
    error: str | None = Field(None, description="Why the evaluation failed")
    skipped: str | None = Field(None, description="Why it could not run (a missing variable)")
    judge_trace_id: str | None = Field(None, description="The judge call's trace (tracing on)")
    judge_project: str | None = None


class RunItemOut(Schema):
    id: int
    target_kind: str = Field(..., description="span, trace or session")
    target_id: str = Field(..., description="The span id, trace id or session id")
    outcome: str = Field(..., description="succeeded, errored, skipped or pending")
    reason: str = Field(..., description="Why the item was skipped")
    start_time: datetime | None
    finished_at: datetime | None
    results: list[RunItemResultOut] = Field(..., description="One per evaluator")


class RunCreatedOut(Schema):
    run_id: int


class LogsQuery(Schema):
    logs_limit: int = Field(DEFAULT_LOGS_LIMIT, ge=0, le=MAX_LOGS_LIMIT)
    logs_after: int | None = Field(None, description="Log entries after this id")
    logs_level: str | None = Field(None, description="info, warning or error")


class InvalidOut(Schema):
    detail: str
    field: str


class RejectedOut(Schema):
    detail: str
    message: str
    code: str


# --- helpers ----------------------------------------------------------------------------------


def _task(task_id: int) -> Task:
    task = task_get(task_id)
    if task is None:
        raise HttpError(404, f"no task #{task_id}")
    return task


def _run(run_id: int) -> TaskRun:
    run = run_get(run_id)
    if run is None:
        raise HttpError(404, f"no run #{run_id}")
    return run


def _invalid(exc: TaskInvalid) -> Status:
    return Status(422, {"detail": f"{exc.field}: {exc.message}", "field": exc.field})


def _rejected(exc: RunRejected, *, where: str = "") -> Status:
    detail = f"{where}: {exc.message}" if where else exc.message
    status = _REJECTED_STATUS.get(exc.code, 400)
    return Status(status, {"detail": detail, "message": exc.message, "code": exc.code})


def _project_of(ident: str) -> Project:
    project = project_get(str(ident))
    if project is None:
        raise TaskInvalid("project", f"no project named {ident!r}")
    return project


def _dataset_of(ident: str | None) -> Any:
    """The dataset named (or numbered) ``ident``: the model the task's foreign key names, so
    that this product imports no other."""
    if ident is None or not str(ident).strip():
        return None
    model = Task._meta.get_field("dataset").related_model
    text = str(ident).strip()
    found = (
        model.objects.filter(pk=int(text)).first() if text.isdigit() and len(text) < 18 else None
    )
    found = found or model.objects.filter(name=text).first()
    if found is None:
        raise TaskInvalid("dataset", f"no dataset named {ident!r}")
    return found


def _provider_of(ident: int | str | None) -> Provider | None:
    if ident is None or str(ident).strip() == "":
        return None
    text = str(ident).strip()
    provider = Provider.objects.filter(pk=int(text)).first() if text.isdigit() else None
    provider = provider or Provider.objects.filter(name=text).first()
    if provider is None:
        raise TaskInvalid("provider", f"no provider {ident!r}")
    return provider


def _evaluators_of(entries: list[TaskEvaluatorIn | int | str]) -> list[TaskEvaluatorInput]:
    resolved = []
    for entry in entries:
        if not isinstance(entry, TaskEvaluatorIn):
            entry = TaskEvaluatorIn(evaluator=entry)
        evaluator = evaluator_get(entry.evaluator)
        if evaluator is None:
            raise TaskInvalid("evaluators", f"no evaluator {entry.evaluator!r}")
        resolved.append(TaskEvaluatorInput(evaluator=evaluator, variables=dict(entry.variables)))
    return resolved


# Fields a PATCH may set to null (each means "the default"); the others need a value.
_NULLABLE = {"quiet_seconds", "provider"}


def _changes(body: TaskPatch) -> dict[str, Any]:
    """The fields a PATCH gives, with names resolved to rows (``TaskInvalid`` when one is
    unknown or null where a value is needed)."""
    changes: dict[str, Any] = {}
    for name in body.model_fields_set:
        value = getattr(body, name)
        if value is None and name not in _NULLABLE:
            raise TaskInvalid(name, "may not be null")
        if name == "project":
            value = _project_of(value)
        elif name == "dataset":
            value = _dataset_of(value)
        elif name == "evaluators":
            value = _evaluators_of(value)
        elif name == "provider":
            value = _provider_of(value)
        changes[name] = value
    return changes


def _task_input(body: TaskIn) -> TaskInput:
    fields = body.model_dump(exclude={"project", "dataset", "evaluators", "provider", "backfill"})
    project = _project_of(body.project) if body.project is not None else None
    return TaskInput(
        **fields,
        project=project,
        dataset=_dataset_of(body.dataset),
        evaluators=_evaluators_of(body.evaluators),
        provider=_provider_of(body.provider),
    )


# Task fields that name other rows: shown by name and id.
_REFERENCES = {"project", "dataset", "evaluators", "provider"}


def _task_out(task: Task) -> dict[str, Any]:
    out = {name: getattr(task, name) for name in TASK_FIELDS if name not in _REFERENCES}
    return out | {
        "id": task.pk,
        "project": task.project.name if task.project else None,
        "project_id": task.project_id,
        "dataset": task.dataset.name if task.dataset else None,
        "dataset_id": task.dataset_id,
        "status": task.status,
        "paused_reason": task.paused_reason,
        "evaluators": [
            {
                "evaluator": te.evaluator.name,
                "evaluator_id": te.evaluator_id,
                "annotation_name": te.evaluator.annotation_name,
                "variables": te.variables,
            }
            for te in task.task_evaluators.all()
        ],
        "effective_quiet_seconds": task.effective_quiet_seconds,
        "provider": task.provider.name if task.provider else None,
        "provider_id": task.provider_id,
        "last_checked_at": task.last_checked_at,
        "created_at": task.created_at,
        "updated_at": task.updated_at,
    }


def _run_out(run: TaskRun) -> dict[str, Any]:
    duration = None
    if run.started_at is not None:
        duration = (run.finished_at or run.updated_at) - run.started_at
    return {
        "id": run.pk,
        "task_id": run.task_id,
        "task": run.task.name if run.task else None,
        "project": run.project.name if run.project else None,
        "project_id": run.project_id,
        "experiment_id": run.experiment_id,
        "kind": run.kind,
        "status": run.status,
        "active": run.is_active,
        "evaluators": [e["name"] for e in run.config.get("evaluators", [])],
        "data_start_time": run.data_start,
        "data_end_time": run.data_end,
        "items_start_time": run.items_start,
        "items_end_time": run.items_end,
        "max_spans": run.max_items,
        "counts": run_progress(run),
        "error": run.error,
        "created_at": run.created_at,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "duration_seconds": round(duration.total_seconds(), 3) if duration else None,
    }


# --- tasks ------------------------------------------------------------------------------------


@router.get("/tasks", response={200: list[TaskOut], 400: ErrorOut, 404: ErrorOut})
@paged()
def tasks_list(request: HttpRequest, project: str | None = None) -> Pages:
    """Tasks, newest first, a page at a time; ``project`` (a name or id) keeps its tasks."""
    scope = None
    if project is not None:
        scope = project_get(project)
        if scope is None:
            raise HttpError(404, f"project {project!r} not found")

    def pages(*, cursor: str | None, limit: int) -> Page[dict[str, Any]]:
        return page_newest(task_list(project=scope), cursor=cursor, limit=limit).map(_task_out)

    return pages


@router.post(
    "/tasks",
    response={201: TaskCreatedOut, 400: RejectedOut, 409: RejectedOut, 422: InvalidOut},
)
def tasks_create(request: HttpRequest, body: TaskIn) -> Status:
    """Create a task; with ``backfill``, start a backfill run too (both or neither)."""
    user = request_user(request)
    try:
        with transaction.atomic():
            task = task_create(data=_task_input(body), user=user)
            run = None
            if body.backfill is not None:
                run = run_backfill_create(
                    task=task,
                    start=body.backfill.data_start_time,
                    end=body.backfill.data_end_time,
                    max_items=body.backfill.max_spans,
                    user=user,
                )
    except TaskInvalid as exc:
        return _invalid(exc)
    except RunRejected as exc:
        return _rejected(exc, where="backfill")
    return Status(201, _task_out(_task(task.pk)) | {"backfill_run_id": run.pk if run else None})


@router.get("/tasks/{task_id}", response={200: TaskOut, 404: ErrorOut})
def tasks_get(request: HttpRequest, task_id: int) -> dict[str, Any]:
    return _task_out(_task(task_id))


@router.patch("/tasks/{task_id}", response={200: TaskOut, 404: ErrorOut, 422: InvalidOut})
def tasks_update(request: HttpRequest, task_id: int, body: TaskPatch) -> Any:
    """Change any subset of the fields; runs already made keep the settings they started
    with."""
    task = _task(task_id)
    try:
        task_update(task=task, changes=_changes(body))
    except TaskInvalid as exc:
        return _invalid(exc)
    return _task_out(_task(task_id))


@router.delete("/tasks/{task_id}", response={204: None, 404: ErrorOut})
def tasks_delete(request: HttpRequest, task_id: int) -> Status:
    """Delete the task and its runs; the results it wrote stay on the spans."""
    task_delete(task=_task(task_id))
    return Status(204, None)


@router.post("/tasks/{task_id}/pause", response={200: TaskOut, 404: ErrorOut})
def tasks_pause(request: HttpRequest, task_id: int) -> dict[str, Any]:
    """Stop continuous runs (runs already going finish)."""
    task_pause(task=_task(task_id))
    return _task_out(_task(task_id))


@router.post("/tasks/{task_id}/resume", response={200: TaskOut, 404: ErrorOut})
def tasks_resume(request: HttpRequest, task_id: int) -> dict[str, Any]:
    """Continuous runs start again from where they stopped."""
    task_resume(task=_task(task_id))
    return _task_out(_task(task_id))


# --- runs -------------------------------------------------------------------------------------


@router.post(
    "/tasks/{task_id}/runs",
    response={201: RunCreatedOut, 400: RejectedOut, 404: ErrorOut, 409: RejectedOut},
)
def tasks_run_backfill(request: HttpRequest, task_id: int, body: RunIn) -> Status:
    """Start a backfill over spans (traces, sessions) that started in
    [data_start_time, data_end_time), newest first, at most ``max_spans`` items."""
    try:
        run = run_backfill_create(
            task=_task(task_id),
            start=body.data_start_time,
            end=body.data_end_time,
            max_items=body.max_spans,
            user=request_user(request),
        )
    except RunRejected as exc:
        return _rejected(exc)
    return Status(201, {"run_id": run.pk})


@router.get("/tasks/{task_id}/runs", response={200: list[RunOut], 400: ErrorOut, 404: ErrorOut})
@paged()
def tasks_runs(request: HttpRequest, task_id: int) -> Pages:
    """The task's runs, newest first, a page at a time."""
    runs = run_list(task=_task(task_id))

    def pages(*, cursor: str | None, limit: int) -> Page[dict[str, Any]]:
        return page_newest(runs, cursor=cursor, limit=limit).map(_run_out)

    return pages


@router.get("/runs/{run_id}", response={200: RunDetailOut, 404: ErrorOut})
def runs_get(request: HttpRequest, run_id: int, logs: Query[LogsQuery]) -> dict[str, Any]:
    """A run: status, window, timing, counts, error and its log (oldest first,
    ``logs_limit`` entries after ``logs_after``)."""
    run = _run(run_id)
    entries = run_logs(run=run, level=logs.logs_level or "")
    total = entries.count()
    if logs.logs_after is not None:
        entries = entries.filter(pk__gt=logs.logs_after)
    page = list(entries[: logs.logs_limit + 1])
    more = len(page) > logs.logs_limit
    page = page[: logs.logs_limit]
    return _run_out(run) | {
        "logs": [
            {
                "id": entry.pk,
                "time": entry.created_at,
                "level": entry.level,
                "message": entry.message,
                "count": entry.count,
                "target_kind": entry.target_kind,
                "target_key": entry.target_key,
                "evaluator": entry.evaluator,
            }
            for entry in page
        ],
        "logs_total": total,
        "logs_next_after": page[-1].pk if more and page else None,
    }


_STATUS_OUTCOME = {status: outcome.value for outcome, status in OUTCOME_STATUS.items()}


def _run_item_out(item: TaskRunItem) -> dict[str, Any]:
    return {
        "id": item.pk,
        "target_kind": item.target_kind,
        "target_id": item.target_key,
        "outcome": _STATUS_OUTCOME[ItemStatus(item.status)],
        "reason": item.reason,
        "start_time": item.start_time,
        "finished_at": item.finished_at,
        "results": item.results,
    }


def _run_items(run: TaskRun, outcome: str | None) -> Pages:
    outcome = outcome or ""
    if outcome and outcome not in ItemOutcome.values:
        raise HttpError(400, f"outcome: must be one of {', '.join(ItemOutcome.values)}")

    def pages(*, cursor: str | None, limit: int) -> Page[dict[str, Any]]:
        page = run_items(run=run, outcome=outcome, after=cursor_id(cursor), limit=limit)
        after = page.next_after
        return Page([_run_item_out(i) for i in page.items], None if after is None else str(after))

    return pages


@router.get(
    "/tasks/{task_id}/runs/{run_id}/items",
    response={200: list[RunItemOut], 400: ErrorOut, 404: ErrorOut},
)
@paged()
def tasks_run_items(
    request: HttpRequest,
    task_id: int,
    run_id: int,
    outcome: str | None = Query(None, description=_OUTCOME_HELP),
) -> Pages:
    """The items a run of the task listed, in order, a page at a time: each span, trace or
    session with its outcome (``outcome=`` keeps one: succeeded, errored, skipped, pending)
    and each evaluator's label, score, explanation, latency and error. The same items as the
    trace browser's ``task_run = <run id>``."""
    run = _run(run_id)
    if run.task_id != _task(task_id).pk:
        raise HttpError(404, f"task #{task_id} has no run #{run_id}")
    return _run_items(run, outcome)


@router.get("/runs/{run_id}/items", response={200: list[RunItemOut], 400: ErrorOut, 404: ErrorOut})
@paged()
def runs_items(
    request: HttpRequest, run_id: int, outcome: str | None = Query(None, description=_OUTCOME_HELP)
) -> Pages:
    """A run's items (also runs of no task: manual runs with an evaluator); as
    ``/v1/tasks/{task_id}/runs/{run_id}/items``."""
    return _run_items(_run(run_id), outcome)


@router.post("/runs/{run_id}/cancel", response={200: RunOut, 404: ErrorOut, 409: RejectedOut})
def runs_cancel(request: HttpRequest, run_id: int) -> Any:
    """Stop a queued or running run; what it evaluated stays."""
    try:
        run_cancel(run=_run(run_id), user=request_user(request))
    except RunRejected as exc:
        return _rejected(exc)
    return _run_out(_run(run_id))
