"""REST routes for online evaluation tasks and their runs (``/v1/tasks``, ``/v1/runs``).

Errors are ``{"detail": ...}``. An invalid task is a 422 whose ``detail`` starts with the
field (``"filter: ..."``) and whose ``field`` names it; a run that cannot start (or stop) is a
400 (a bad range or cap) or a 409 (the task's state: paused, no provider...) carrying the
service's ``code`` and ``message``. Nothing is written when a request is refused. Times are
ISO 8601 with a time zone. The bodies and answers are declared in ``evalhub.tasks.schemas``.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Query, Router, Status
from ninja.errors import HttpError

from evalhub.core.paging import ErrorOut, Page, Pages, cursor_id, page_newest, paged
from evalhub.evaluators.selectors import evaluator_get
from evalhub.identity.auth import request_user
from evalhub.providers.models import Provider
from evalhub.tasks.backfill import BackfillInput, run_backfill_create, task_save
from evalhub.tasks.models import (
    OUTCOME_STATUS,
    ItemOutcome,
    ItemStatus,
    Task,
    TaskRun,
    TaskRunItem,
)
from evalhub.tasks.runs import RunRejected, run_cancel
from evalhub.tasks.schemas import (
    InvalidOut,
    LogsQuery,
    RejectedOut,
    RunCreatedOut,
    RunDetailOut,
    RunIn,
    RunItemOut,
    RunOut,
    TaskCreatedOut,
    TaskEvaluatorIn,
    TaskIn,
    TaskOut,
    TaskPatch,
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
    TASK_FIELDS,
    TaskEvaluatorInput,
    TaskInput,
    TaskInvalid,
    task_delete,
    task_pause,
    task_resume,
    task_update,
)
from tracing.models import Project
from tracing.store.selectors import project_get

router = Router(tags=["tasks"])

_OUTCOME_HELP = "succeeded, errored, skipped or pending"


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
        model._default_manager.filter(pk=int(text)).first()
        if text.isdigit() and len(text) < 18
        else None
    )
    found = found or model._default_manager.filter(name=text).first()
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
    backfill = None
    if body.backfill is not None:
        backfill = BackfillInput(
            start=body.backfill.data_start_time,
            end=body.backfill.data_end_time,
            max_items=body.backfill.max_spans,
        )
    try:
        task, run = task_save(data=_task_input(body), backfill=backfill, user=request_user(request))
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
