"""Labeling queue routes (``/v1/annotation_queues``): list and create queues, add items (by
span / trace / session ids or from a filter), list items with their states, progress.

Errors are ``{"detail": ...}`` naming the field; an add that fails adds nothing. Annotators
(their browser session or API key) see their own queues and items only, and cannot create
queues or add items.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Q
from django.http import HttpRequest
from ninja import Field, Query, Router, Schema
from ninja.errors import HttpError

from annotations.models import AnnotationConfig
from annotations.queues.models import AssignmentMode, LabelingQueue
from annotations.queues.progress import queue_progress
from annotations.queues.selectors import (
    ITEM_STATES,
    ItemRow,
    queue_find,
    queue_item_rows,
    queue_item_rows_build,
    queue_list,
)
from annotations.queues.services import (
    MAX_ITEMS_PER_ADD,
    QueueItemsNotFound,
    QueueNameTaken,
    queue_create,
    queue_items_add,
    queue_items_add_from_filter,
)
from evalhub.core.paging import Page, Pages, page_from_id, paged
from evalhub.identity.auth import request_user
from evalhub.identity.roles import is_annotator
from tracing.api.mutations import project_from_path
from tracing.query import FilterError

router = Router(tags=["annotation queues"])


class QueueIn(Schema):
    name: str
    instructions: str | None = None
    item_kind: str = Field(..., description="SPAN, TRACE or SESSION")
    assignment_mode: str = Field(
        AssignmentMode.ALL,
        description="ALL (every assignee labels every item) or ROUND_ROBIN (one each, in turn)",
    )
    configs: list[str] = Field(..., description="The rubric: annotation config names (or ids)")
    assignees: list[str] = Field(
        default_factory=list, description="Usernames; none makes the queue open to the team"
    )


class QueueOut(Schema):
    id: int
    name: str
    instructions: str
    item_kind: str
    assignment_mode: str
    configs: list[str]
    assignees: list[str]
    created_at: datetime


class QueueResponse(Schema):
    data: QueueOut


class QueuesResponse(Schema):
    data: list[QueueOut]


class ItemsIn(Schema):
    span_ids: list[str] | None = None
    trace_ids: list[str] | None = None
    session_ids: list[str] | None = None
    project: str | None = Field(
        None, description="Project id or name: needed with a filter or session ids"
    )
    filter: str | None = Field(
        None, description="The filter language, on the project's spans (instead of ids)"
    )
    limit: int | None = Field(
        None, description=f"With a filter: at most this many (≤ {MAX_ITEMS_PER_ADD})"
    )
    sample_percent: float = Field(100.0, description="With a filter: keep each match with this %")


class ItemsAdded(Schema):
    added: int
    already_queued: int


class ItemsAddedResponse(Schema):
    data: ItemsAdded


class PersonStateOut(Schema):
    user: str
    state: str


class ItemOut(Schema):
    id: int
    target_kind: str
    target_id: str
    project: str
    state: str
    states: list[PersonStateOut]
    assigned_to: str | None
    reserved_by: str | None
    reserved_until: datetime | None
    created_at: datetime


class ItemsQuery(Schema):
    state: str | None = Field(None, description="PENDING, COMPLETED or SKIPPED")
    assignee: str | None = Field(None, description="A username: their items and states")


class AnnotatorProgressOut(Schema):
    user: str
    assignee: bool
    total: int | None
    completed: int
    skipped: int
    pending: int | None


class ProgressOut(Schema):
    items: int
    total: int
    completed: int
    skipped: int
    pending: int
    percent: int
    annotators: list[AnnotatorProgressOut]


class ProgressResponse(Schema):
    data: ProgressOut


def _user(request: HttpRequest) -> User | AnonymousUser:
    return request_user(request) or AnonymousUser()


def _not_annotator(request: HttpRequest) -> None:
    if is_annotator(_user(request)):
        raise HttpError(403, "annotators cannot create queues or add items")


def _queue(request: HttpRequest, ident: str) -> LabelingQueue:
    queue = queue_find(ident, user=_user(request))
    if queue is None:
        raise HttpError(404, f"annotation queue {ident!r} not found")
    return queue


def _queue_out(queue: LabelingQueue) -> dict[str, Any]:
    return {
        "id": queue.pk,
        "name": queue.name,
        "instructions": queue.instructions,
        "item_kind": queue.item_kind,
        "assignment_mode": queue.assignment_mode,
        "configs": sorted(config.name for config in queue.configs.all()),
        "assignees": sorted(user.get_username() for user in queue.assignees.all()),
        "created_at": queue.created_at,
    }


def _configs(names: list[str]) -> list[AnnotationConfig]:
    wanted = [name.strip() for name in names if isinstance(name, str) and name.strip()]
    ids = [int(name) for name in wanted if name.isdigit()]
    found = list(AnnotationConfig.objects.filter(Q(name__in=wanted) | Q(pk__in=ids)))
    known = {c.name for c in found} | {str(c.pk) for c in found}
    missing = [name for name in wanted if name not in known]
    if missing:
        raise HttpError(400, f"configs: unknown annotation configs: {', '.join(missing)}")
    return found


def _assignees(usernames: list[str]) -> list[User]:
    user_model = get_user_model()
    wanted = [name.strip() for name in usernames if isinstance(name, str) and name.strip()]
    found = list(
        user_model.objects.filter(**{f"{user_model.USERNAME_FIELD}__in": wanted}, is_active=True)
    )
    known = {user.get_username() for user in found}
    missing = [name for name in wanted if name not in known]
    if missing:
        raise HttpError(400, f"assignees: unknown users: {', '.join(missing)}")
    return found


def _item_out(row: ItemRow) -> dict[str, Any]:
    return {
        "id": row.pk,
        "target_kind": row.target_kind,
        "target_id": row.target_id,
        "project": row.project_name,
        "state": row.state,
        "states": [{"user": p.username, "state": p.state} for p in row.people],
        "assigned_to": row.assigned_to,
        "reserved_by": row.reserved_by,
        "reserved_until": row.reserved_until,
        "created_at": row.created_at,
    }


@router.get("/annotation_queues", response=QueuesResponse, url_name="annotation_queues")
def annotation_queues_list(request: HttpRequest) -> dict[str, Any]:
    """The queues you see, by name (an annotator: the ones assigned to them)."""
    return {"data": [_queue_out(queue) for queue in queue_list(user=_user(request))]}


@router.post("/annotation_queues", response=QueueResponse, url_name="annotation_queues_create")
def annotation_queues_create(request: HttpRequest, body: QueueIn) -> dict[str, Any]:
    """Create a queue. 400 names the invalid field; 409 when the name is taken."""
    _not_annotator(request)
    configs = _configs(body.configs)
    assignees = _assignees(body.assignees)
    user = _user(request)
    try:
        queue = queue_create(
            name=body.name,
            instructions=body.instructions,
            item_kind=body.item_kind,
            assignment_mode=body.assignment_mode,
            configs=configs,
            assignees=assignees,
            user=user if isinstance(user, User) else None,
        )
    except QueueNameTaken as exc:
        raise HttpError(409, str(exc)) from None
    return {"data": _queue_out(queue)}


@router.get("/annotation_queues/{name:queue}", response=QueueResponse, url_name="annotation_queue")
def annotation_queue_detail(request: HttpRequest, queue: str) -> dict[str, Any]:
    """One queue, by id or name."""
    return {"data": _queue_out(_queue(request, queue))}


@router.post(
    "/annotation_queues/{name:queue}/items",
    response=ItemsAddedResponse,
    url_name="annotation_queue_items_add",
)
def annotation_queue_items_add(request: HttpRequest, queue: str, body: ItemsIn) -> dict[str, Any]:
    """Add items: ``span_ids`` / ``trace_ids`` / ``session_ids`` (the kind the queue takes;
    session ids with ``project``), or ``filter`` on a ``project``'s spans with an optional
    ``limit`` and ``sample_percent``. All or nothing: 400 names the bad field, 404 lists the
    ids not found. Items already queued are counted in ``already_queued``."""
    _not_annotator(request)
    found = _queue(request, queue)
    project = project_from_path(body.project) if body.project else None
    ids_given = any(v is not None for v in (body.span_ids, body.trace_ids, body.session_ids))
    try:
        if body.filter is not None:
            if ids_given:
                raise HttpError(400, "filter: send either ids or a filter, not both")
            if project is None:
                raise HttpError(400, "project: a filter needs the project it runs on")
            result = queue_items_add_from_filter(
                queue=found,
                project=project,
                filter_text=body.filter,
                limit=body.limit,
                sample_percent=body.sample_percent,
            )
        else:
            if body.limit is not None:
                raise HttpError(400, "limit: only with a filter")
            result = queue_items_add(
                queue=found,
                span_ids=body.span_ids,
                trace_ids=body.trace_ids,
                session_ids=body.session_ids,
                project=project,
            )
    except FilterError as exc:
        raise HttpError(400, f"filter: {exc}") from None
    except QueueItemsNotFound as exc:
        raise HttpError(404, str(exc)) from None
    return {"data": {"added": result.added, "already_queued": result.already_queued}}


@router.get(
    "/annotation_queues/{name:queue}/items",
    response=list[ItemOut],
    url_name="annotation_queue_items",
)
@paged(invalid_status=422)
def annotation_queue_items(request: HttpRequest, queue: str, params: Query[ItemsQuery]) -> Pages:
    """The queue's items by id with their overall state and each person's, a page at a time
    (``next_cursor``). ``state`` keeps one state; ``assignee`` shows one person's items and
    states (an annotator always sees their own)."""
    found = _queue(request, queue)
    state = params.state.upper() if params.state else None
    if state is not None and state not in ITEM_STATES:
        raise HttpError(422, f"state: must be one of {', '.join(ITEM_STATES)}")
    user = _user(request)
    assignee = None
    if is_annotator(user):
        assignee = user
    elif params.assignee:
        assignee = found.assignees.filter(
            **{get_user_model().USERNAME_FIELD: params.assignee}
        ).first()
        if assignee is None:
            raise HttpError(422, f"assignee: {params.assignee!r} is not assigned to this queue")
    items = queue_item_rows(queue=found, state=state, assignee=assignee)  # type: ignore[arg-type]  # an assignee found above is a user

    def pages(*, cursor: str | None, limit: int) -> Page[dict[str, Any]]:
        page = page_from_id(items, cursor=cursor, limit=limit, descending=False)
        rows = queue_item_rows_build(queue=found, items=page.items)
        return Page([_item_out(row) for row in rows], page.next_cursor)

    return pages


@router.get(
    "/annotation_queues/{name:queue}/progress",
    response=ProgressResponse,
    url_name="annotation_queue_progress",
)
def annotation_queue_progress(request: HttpRequest, queue: str) -> dict[str, Any]:
    """Progress overall (slots: items times assignees with ALL) and per annotator."""
    progress = queue_progress(queue=_queue(request, queue))
    overall = progress.overall
    return {
        "data": {
            "items": progress.items,
            "total": overall.total,
            "completed": overall.completed,
            "skipped": overall.skipped,
            "pending": overall.pending,
            "percent": overall.percent,
            "annotators": [
                {
                    "user": person.username,
                    "assignee": person.is_assignee,
                    "total": person.tally.total or None,
                    "completed": person.tally.completed,
                    "skipped": person.tally.skipped,
                    "pending": person.tally.pending if person.tally.total else None,
                }
                for person in progress.annotators
            ],
        }
    }


__all__ = ["router"]
