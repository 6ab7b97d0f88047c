"""Progress of labeling queues: per queue (slots filled, completed, skipped) and per annotator.

Whose reviews count is the rule of ``annotations.queues.selectors`` (``assignee_ids``,
``queue_items_for``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.db.models import Count, F

from annotations.queues.models import (
    AssignmentMode,
    ItemState,
    LabelingQueue,
    LabelingQueueItem,
    LabelingQueueReview,
)
from annotations.queues.selectors import AnyUser, assignee_ids, queue_items_for


@dataclass(slots=True)
class Tally:
    """Slots of a queue (or of one person in it) by state."""

    total: int = 0
    completed: int = 0
    skipped: int = 0

    @property
    def pending(self) -> int:
        return max(self.total - self.completed - self.skipped, 0)

    @property
    def done(self) -> int:
        return self.completed + self.skipped

    @property
    def percent(self) -> int:
        """Done (completed or skipped) as a whole percentage; 0 of 0 is 0."""
        return round(100 * self.done / self.total) if self.total else 0

    @property
    def completed_percent(self) -> float:
        return round(100 * self.completed / self.total, 1) if self.total else 0.0

    @property
    def skipped_percent(self) -> float:
        return round(100 * self.skipped / self.total, 1) if self.total else 0.0


@dataclass(slots=True)
class AnnotatorProgress:
    user_id: int
    username: str
    is_assignee: bool
    tally: Tally  # ``total`` is 0 in an open queue: nothing is anyone's in particular


@dataclass(slots=True)
class QueueProgress:
    items: int
    overall: Tally
    annotators: list[AnnotatorProgress] = field(default_factory=list)


def queue_progress(*, queue: LabelingQueue) -> QueueProgress:
    """Progress overall and per person.

    Overall counts slots: items times assignees in ``ALL``, items otherwise. In an open queue an
    item is completed once anyone labelled it, and skipped when people only skipped it. Per
    person: their slots (``total``) and what they did; people who reviewed items without
    being assignees (anymore) are listed too, with no total.
    """
    items = LabelingQueueItem.objects.filter(queue=queue)
    item_count = items.count()
    ids = assignee_ids(queue)
    reviews = LabelingQueueReview.objects.filter(item__queue=queue)
    if ids and queue.assignment_mode == AssignmentMode.ROUND_ROBIN:
        reviews = reviews.filter(user=F("item__assigned_to"))
    per_user: dict[int, Tally] = {}
    for user_id, state, n in reviews.values_list("user", "state").annotate(n=Count("id")):
        tally = per_user.setdefault(user_id, Tally())
        if state == ItemState.COMPLETED:
            tally.completed += n
        else:
            tally.skipped += n

    overall = Tally()
    if not ids:
        overall.total = item_count
        overall.completed = items.filter(reviews__state=ItemState.COMPLETED).distinct().count()
        overall.skipped = (
            items.filter(reviews__isnull=False)
            .exclude(reviews__state=ItemState.COMPLETED)
            .distinct()
            .count()
        )
    elif queue.assignment_mode == AssignmentMode.ROUND_ROBIN:
        assigned = dict(
            items.filter(assigned_to__in=ids)
            .values_list("assigned_to")
            .annotate(n=Count("id"))
            .order_by()
        )
        for user_id in ids:
            per_user.setdefault(user_id, Tally()).total = assigned.get(user_id, 0)
        overall.total = item_count
        overall.completed = sum(t.completed for t in per_user.values())
        overall.skipped = sum(t.skipped for t in per_user.values())
    else:
        for user_id in ids:
            per_user.setdefault(user_id, Tally()).total = item_count
        overall.total = item_count * len(ids)
        overall.completed = sum(per_user[u].completed for u in ids)
        overall.skipped = sum(per_user[u].skipped for u in ids)

    names = dict(
        get_user_model()
        .objects.filter(pk__in=list(per_user))
        .values_list("pk", get_user_model().USERNAME_FIELD)
    )
    annotators = [
        AnnotatorProgress(
            user_id=user_id,
            username=names.get(user_id, f"user {user_id}"),
            is_assignee=user_id in ids,
            tally=tally,
        )
        for user_id, tally in per_user.items()
    ]
    annotators.sort(key=lambda a: (not a.is_assignee, a.username))
    return QueueProgress(items=item_count, overall=overall, annotators=annotators)


def queue_progress_for(*, queue: LabelingQueue, user: AnyUser) -> Tally:
    """One person's slots in the queue: what is theirs to do, and what they did of it."""
    tally = Tally(
        completed=queue_items_for(queue=queue, user=user, state=ItemState.COMPLETED).count(),
        skipped=queue_items_for(queue=queue, user=user, state=ItemState.SKIPPED).count(),
    )
    tally.total = tally.done + queue_items_for(queue=queue, user=user).count()
    return tally
