"""Reads for labeling queues: who sees which queue, what is pending for whom, progress, the
items list with each person's state, and an item laid out for labelling (through the trace
browser's detail selectors). Progress: ``annotations.queues.progress``; an item laid out: ``annotations.queues.display``.

Where an item stands for a person is derived, never stored as PENDING: a
``LabelingQueueReview`` says COMPLETED or SKIPPED, its absence PENDING. Whose reviews count
depends on the queue:

* ``ALL`` with assignees: every assignee has a slot on every item;
* ``ROUND_ROBIN`` with assignees: the item's ``assigned_to`` has its one slot;
* no assignees (an open queue): one slot, filled by whoever labels it first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce, Substr
from django.utils import timezone

from annotations.models import (
    Annotation,
    AnnotationConfig,
    AnnotationConfigKind,
    AnnotatorKind,
    TargetKind,
)
from annotations.queues.models import (
    AssignmentMode,
    ItemState,
    LabelingQueue,
    LabelingQueueItem,
    LabelingQueueReview,
)
from evalhub.identity.roles import is_annotator
from tracing.models import Span

AnyUser = User | AnonymousUser
ITEM_STATES: Final = (ItemState.PENDING, ItemState.COMPLETED, ItemState.SKIPPED)
PREVIEW_CHARS: Final = 240  # of an item's input and output in the queue's list
# The trace browser tab whose rows can go to a queue of each kind.
TAB_KINDS: Final = {
    "spans": TargetKind.SPAN,
    "traces": TargetKind.TRACE,
    "sessions": TargetKind.SESSION,
}
KIND_NOUNS: Final[dict[str, tuple[str, str]]] = {
    TargetKind.SPAN: ("span", "spans"),
    TargetKind.TRACE: ("trace", "traces"),
    TargetKind.SESSION: ("session", "sessions"),
}


# --- queues -----------------------------------------------------------------------------------


def queue_list(*, user: AnyUser) -> QuerySet[LabelingQueue]:
    """The queues ``user`` sees, by name: an annotator only those assigned to them."""
    queues = LabelingQueue.objects.prefetch_related("assignees", "configs").order_by("name")
    if isinstance(user, User) and is_annotator(user):
        queues = queues.filter(assignees=user)
    return queues


def queue_get(*, queue_id: int, user: AnyUser) -> LabelingQueue | None:
    """The queue with this id if ``user`` sees it (see ``queue_list``)."""
    return queue_list(user=user).filter(pk=queue_id).first()


def queue_find(ident: str, *, user: AnyUser) -> LabelingQueue | None:
    """A queue ``user`` sees, by numeric id, else by name."""
    ident = ident.strip()
    queues = queue_list(user=user)
    if ident.isdigit():
        found = queues.filter(pk=int(ident)).first()
        if found is not None:
            return found
    return queues.filter(name=ident).first()


def queue_choices(*, item_kind: str) -> list[LabelingQueue]:
    """Queues taking items of ``item_kind``, by name (the trace browser's "Add to queue")."""
    return list(LabelingQueue.objects.filter(item_kind=item_kind).order_by("name"))


def queue_configs(*, queue: LabelingQueue) -> list[AnnotationConfig]:
    """The queue's rubric, by name."""
    return list(queue.configs.order_by("name"))


def assignee_ids(queue: LabelingQueue) -> list[int]:
    """The queue's assignees' ids, in the order round robin deals to them (by id)."""
    return sorted(queue.assignees.values_list("pk", flat=True))


def queue_can_label(*, queue: LabelingQueue, user: AnyUser) -> bool:
    """Whether ``user`` labels in this queue: an assignee, or anyone but an annotator when the
    queue has no assignees."""
    if not user.is_authenticated:
        return False
    ids = assignee_ids(queue)
    if ids:
        return user.pk in ids
    return not is_annotator(user)


def queue_item_can_label(*, item: LabelingQueueItem, user: AnyUser) -> bool:
    """Whether ``user`` may label this item: ``queue_can_label``, and in round robin with
    assignees only the item's assignee."""
    queue = item.queue
    if not queue_can_label(queue=queue, user=user):
        return False
    if queue.assignment_mode == AssignmentMode.ROUND_ROBIN and assignee_ids(queue):
        return item.assigned_to_id == user.pk
    return True


def reservation_free(now: datetime, user: AnyUser) -> Q:
    """Items nobody else holds: not reserved, reserved by ``user``, or reserved in the past."""
    return Q(reserved_by__isnull=True) | Q(reserved_by=user.pk) | Q(reserved_until__lte=now)


def queue_items_for(
    *, queue: LabelingQueue, user: AnyUser, state: str = ItemState.PENDING
) -> QuerySet[LabelingQueueItem]:
    """The items in ``state`` for ``user`` (PENDING: still to do; SKIPPED: passed over and
    still not done by anyone else in an open queue; COMPLETED: labelled), by id. Empty for
    someone who does not label in the queue."""
    items = LabelingQueueItem.objects.filter(queue=queue).order_by("id")
    if not queue_can_label(queue=queue, user=user):
        return items.none()
    ids = assignee_ids(queue)
    if ids and queue.assignment_mode == AssignmentMode.ROUND_ROBIN:
        items = items.filter(assigned_to=user.pk)
    mine = LabelingQueueReview.objects.filter(item=OuterRef("pk"), user=user.pk)
    if state == ItemState.PENDING:
        items = items.filter(~Exists(mine))
    else:
        items = items.filter(Exists(mine.filter(state=state)))
    if not ids and state != ItemState.COMPLETED:
        # Open queue: one completion, by anyone, finishes an item.
        done = LabelingQueueReview.objects.filter(item=OuterRef("pk"), state=ItemState.COMPLETED)
        items = items.filter(~Exists(done))
    return items


def queue_items_waiting(*, queue: LabelingQueue, user: AnyUser) -> int:
    """Of ``user``'s pending items, how many someone else holds right now."""
    now = timezone.now()
    return queue_items_for(queue=queue, user=user).exclude(reservation_free(now, user)).count()


# --- the items list ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PersonState:
    username: str
    state: str  # ItemState


@dataclass(slots=True)
class ItemRow:
    """A queue item as listed: its target, overall state, and each person's state."""

    pk: int
    target_kind: str
    target_id: str
    trace_id: str  # the span's trace, for a span item
    title: str
    project_name: str
    state: str
    people: list[PersonState]
    assigned_to: str | None
    reserved_by: str | None
    reserved_until: datetime | None
    created_at: datetime
    input_preview: str = ""  # what there is to judge: the span's, trace root's or session's
    output_preview: str = ""


def _slot_counts(queue: LabelingQueue, ids: Sequence[int]) -> tuple[Any, Any, int]:
    """(reviews counted, completions counted, slots per item) as aggregate expressions."""
    counted = Q()
    if ids and queue.assignment_mode == AssignmentMode.ROUND_ROBIN:
        counted = Q(reviews__user=F("assigned_to"))
        slots = 1
    elif ids:
        counted = Q(reviews__user__in=list(ids))
        slots = len(ids)
    else:
        slots = 1
    reviewed = Count("reviews", filter=counted & Q(reviews__isnull=False))
    completed = Count("reviews", filter=counted & Q(reviews__state=ItemState.COMPLETED))
    return reviewed, completed, slots


def _preview_annotations() -> dict[str, Any]:
    """``input_preview`` and ``output_preview`` of each item: a span's own; a trace's root
    span's; a session's first input and last output (its root spans')."""
    roots = Span.objects.filter(parent_id__isnull=True)
    trace_root = roots.filter(trace=OuterRef("trace"))
    session_roots = roots.filter(session=OuterRef("session"))

    def head(field: str) -> Substr:
        return Substr(field, 1, PREVIEW_CHARS)

    return {
        "input_preview": Coalesce(
            head("span__input_value"),
            Subquery(trace_root.values(preview=head("input_value"))[:1]),
            Subquery(
                session_roots.order_by("start_time", "id").values(preview=head("input_value"))[:1]
            ),
        ),
        "output_preview": Coalesce(
            head("span__output_value"),
            Subquery(trace_root.values(preview=head("output_value"))[:1]),
            Subquery(
                session_roots.order_by("-start_time", "-id").values(preview=head("output_value"))[
                    :1
                ]
            ),
        ),
    }


def queue_item_rows(
    *,
    queue: LabelingQueue,
    state: str | None = None,
    assignee: User | None = None,
) -> QuerySet[LabelingQueueItem]:
    """The queue's items by id, each annotated with ``target_key``, ``title``, ``n_reviewed``
    and ``n_completed`` (the reviews that count) — for ``queue_item_rows_page``.

    ``state`` keeps items in that overall state: PENDING while any slot is open, else
    COMPLETED when someone labelled it, else SKIPPED. With ``assignee`` the state is theirs,
    and in round robin only their items are kept.
    """
    ids = assignee_ids(queue)
    items = (
        LabelingQueueItem.objects.filter(queue=queue)
        .select_related("project", "assigned_to", "reserved_by")
        .annotate(
            target_key=Coalesce(F("span__span_id"), F("trace__trace_id"), F("session__session_id")),
            title=Coalesce(
                F("span__name"), F("trace__root_span_name"), F("session__session_id"), Value("")
            ),
            trace_key=Coalesce(F("span__trace__trace_id"), F("trace__trace_id")),
            **_preview_annotations(),
        )
        .order_by("id")
    )
    if assignee is not None:
        if ids and queue.assignment_mode == AssignmentMode.ROUND_ROBIN:
            items = items.filter(assigned_to=assignee.pk)
        if state:
            mine = LabelingQueueReview.objects.filter(item=OuterRef("pk"), user=assignee.pk)
            if state == ItemState.PENDING:
                items = items.filter(~Exists(mine))
            else:
                items = items.filter(Exists(mine.filter(state=state)))
        return items
    reviewed, completed, slots = _slot_counts(queue, ids)
    items = items.annotate(n_reviewed=reviewed, n_completed=completed)
    if state == ItemState.PENDING:
        items = items.filter(n_reviewed__lt=slots)
    elif state == ItemState.COMPLETED:
        items = items.filter(n_reviewed__gte=slots, n_completed__gt=0)
    elif state == ItemState.SKIPPED:
        items = items.filter(n_reviewed__gte=slots, n_completed=0)
    return items


def queue_item_rows_build(
    *, queue: LabelingQueue, items: Sequence[LabelingQueueItem]
) -> list[ItemRow]:
    """A page of ``queue_item_rows`` → ``ItemRow``s, with everyone's state (one query)."""
    ids = assignee_ids(queue)
    user_model = get_user_model()
    names = dict(user_model.objects.filter(pk__in=ids).values_list("pk", user_model.USERNAME_FIELD))
    by_item: dict[int, dict[int, str]] = {}
    for item_id, user_id, username, review_state in LabelingQueueReview.objects.filter(
        item__in=[item.pk for item in items]
    ).values_list("item", "user", f"user__{user_model.USERNAME_FIELD}", "state"):
        by_item.setdefault(item_id, {})[user_id] = review_state
        names.setdefault(user_id, username)
    round_robin = bool(ids) and queue.assignment_mode == AssignmentMode.ROUND_ROBIN
    now = timezone.now()
    rows = []
    for item in items:
        states = by_item.get(item.pk, {})
        if round_robin:
            slot_users = [item.assigned_to_id] if item.assigned_to_id else []
        elif ids:
            slot_users = list(ids)
        else:
            slot_users = sorted(states, key=lambda u: names.get(u, ""))
        people = [
            PersonState(names.get(u, f"user {u}"), states.get(u, ItemState.PENDING))
            for u in slot_users
            if u is not None
        ]
        held = item.reserved_by_id is not None and item.reserved_until and item.reserved_until > now
        rows.append(
            ItemRow(
                pk=item.pk,
                target_kind=queue.item_kind,
                target_id=item.target_key or "",  # type: ignore[attr-defined]  # annotated by queue_item_rows
                trace_id=item.trace_key or "",  # type: ignore[attr-defined]  # annotated by queue_item_rows
                title=item.title or "",  # type: ignore[attr-defined]  # annotated by queue_item_rows
                project_name=item.project.name,
                state=_overall_state(people, open_queue=not ids),
                people=people,
                assigned_to=item.assigned_to.get_username() if item.assigned_to else None,
                reserved_by=item.reserved_by.get_username() if held and item.reserved_by else None,
                reserved_until=item.reserved_until if held else None,
                created_at=item.created_at,
                input_preview=getattr(item, "input_preview", None) or "",
                output_preview=getattr(item, "output_preview", None) or "",
            )
        )
    return rows


def _overall_state(people: Sequence[PersonState], *, open_queue: bool) -> str:
    states = [p.state for p in people]
    if open_queue:
        if ItemState.COMPLETED in states:
            return ItemState.COMPLETED
        return ItemState.SKIPPED if states else ItemState.PENDING
    if not states or ItemState.PENDING in states:
        return ItemState.PENDING
    return ItemState.COMPLETED if ItemState.COMPLETED in states else ItemState.SKIPPED


# --- labelling --------------------------------------------------------------------------------


def queue_item_get(*, queue: LabelingQueue, item_id: int) -> LabelingQueueItem | None:
    """The queue's item with this id, its target and project loaded."""
    return (
        LabelingQueueItem.objects.select_related(
            "queue", "project", "span__trace", "trace", "session", "assigned_to", "reserved_by"
        )
        .filter(queue=queue, pk=item_id)
        .first()
    )


def item_target_id(item: LabelingQueueItem) -> str:
    """The user-facing id of the item's span, trace or session."""
    if item.span_id is not None:
        return item.span.span_id  # type: ignore[union-attr]  # the item kind says which target is set
    if item.trace_id is not None:
        return item.trace.trace_id  # type: ignore[union-attr]  # the item kind says which target is set
    return item.session.session_id  # type: ignore[union-attr]  # the item kind says which target is set


def queue_item_state(*, item: LabelingQueueItem, user: AnyUser) -> str:
    """The item's state for ``user``."""
    review = LabelingQueueReview.objects.filter(item=item, user=user.pk).first()
    return review.state if review is not None else ItemState.PENDING


def queue_item_previous(
    *, queue: LabelingQueue, user: AnyUser, item: LabelingQueueItem | None
) -> LabelingQueueItem | None:
    """The item ``user`` reviewed (completed or skipped) in the queue before ``item``: before
    the time they last reviewed ``item``, or their latest review when ``item`` has none."""
    reviews = LabelingQueueReview.objects.filter(item__queue=queue, user=user.pk)
    current = reviews.filter(item=item).first() if item is not None else None
    if current is not None:
        reviews = reviews.filter(
            Q(updated_at__lt=current.updated_at)
            | Q(updated_at=current.updated_at, id__lt=current.pk)
        )
    elif item is not None:
        reviews = reviews.exclude(item=item)
    previous = reviews.order_by("-updated_at", "-id").values_list("item", flat=True).first()
    return queue_item_get(queue=queue, item_id=previous) if previous is not None else None


def queue_item_answers(
    *, item: LabelingQueueItem, user: AnyUser, configs: Sequence[AnnotationConfig]
) -> dict[str, Any]:
    """The answers ``user`` already gave on the item's target (their annotations named after
    the rubric's configs), by config name: a label, a score or a text."""
    target = {"span": item.span_id, "trace": item.trace_id, "session": item.session_id}
    key, pk = next((k, v) for k, v in target.items() if v is not None)
    by_name = {config.name: config for config in configs}
    answers: dict[str, Any] = {}
    for annotation in Annotation.objects.filter(
        **{key: pk},
        identifier=user.get_username(),
        name__in=list(by_name),
        annotator_kind=AnnotatorKind.HUMAN,
    ):
        config = by_name[annotation.name]
        if config.kind == AnnotationConfigKind.CATEGORICAL:
            answers[config.name] = annotation.label
        elif config.kind == AnnotationConfigKind.CONTINUOUS:
            answers[config.name] = annotation.score
        else:
            answers[config.name] = annotation.explanation
    return answers


__all__ = [
    "ITEM_STATES",
    "KIND_NOUNS",
    "TAB_KINDS",
    "ItemRow",
    "PersonState",
    "assignee_ids",
    "item_target_id",
    "queue_can_label",
    "queue_choices",
    "queue_configs",
    "queue_find",
    "queue_get",
    "queue_item_answers",
    "queue_item_can_label",
    "queue_item_get",
    "queue_item_previous",
    "queue_item_rows",
    "queue_item_rows_build",
    "queue_item_state",
    "queue_items_for",
    "queue_items_waiting",
    "queue_list",
]
