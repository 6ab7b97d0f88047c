"""Labelling a queue's items: reservations, and the labels people give — written to the
annotation store by ``annotations_upsert`` in the same transaction that marks the item completed.

Reservations: an item someone opens to label is theirs until
``settings.EVALHUB_QUEUE_RESERVATION_SECONDS`` from then; "next item" hands others a different
one meanwhile. Taking an item is one conditional ``UPDATE`` (free, expired, or already theirs),
so two people asking at once never get the same item.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from annotations.models import (
    Annotation,
    AnnotationConfig,
    AnnotationConfigKind,
    AnnotationSource,
    AnnotatorKind,
)
from annotations.queues.models import (
    ItemState,
    LabelingQueue,
    LabelingQueueItem,
    LabelingQueueReview,
)
from annotations.queues.selectors import (
    assignee_ids,
    item_target_id,
    queue_configs,
    queue_item_can_label,
    queue_items_for,
    reservation_free,
)
from annotations.rubrics.answers import Answer, AnswerInvalid, rubric_answer
from annotations.store.services import AnnotationInput, annotations_upsert


def reservation_seconds() -> int:
    return int(settings.EVALHUB_QUEUE_RESERVATION_SECONDS)


class QueueItemUnavailable(Exception):
    """The item cannot be labelled by this person (not theirs)."""


class QueueItemAlreadyDone(QueueItemUnavailable):
    """An open queue's item that someone else completed first (one completion finishes it)."""

    def __init__(self, *, by: str) -> None:
        self.by = by
        super().__init__(
            f"{by} labelled this item first; in this queue one label finishes an item, so your "
            "answers were not saved"
        )


class QueueItemReserved(QueueItemUnavailable):
    """Someone else has the item open."""

    def __init__(self, *, holder: str, until: datetime) -> None:
        self.holder, self.until = holder, until
        super().__init__(f"{holder} is labelling this item (reserved until {until:%H:%M:%S} UTC)")


class QueueAnswersInvalid(ValueError):
    """Answers that do not fit the rubric: config name (or ``__all__``) → what is wrong."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        self.errors = dict(errors)
        super().__init__("; ".join(f"{name}: {message}" for name, message in self.errors.items()))


def _take(item_pk: int, *, queue: LabelingQueue, user: User, now: datetime) -> bool:
    """Reserve the item for ``user`` unless someone else holds it; let go of their others."""
    until = now + timedelta(seconds=reservation_seconds())
    taken = (
        LabelingQueueItem.objects.filter(pk=item_pk)
        .filter(reservation_free(now, user))
        .update(reserved_by=user, reserved_until=until)
    )
    if taken:
        LabelingQueueItem.objects.filter(queue=queue, reserved_by=user).exclude(pk=item_pk).update(
            reserved_by=None, reserved_until=None
        )
    return bool(taken)


@transaction.atomic
def queue_item_next(
    *, queue: LabelingQueue, user: User, state: str = ItemState.PENDING
) -> LabelingQueueItem | None:
    """Reserve and return ``user``'s next item: the one they hold if still to do, else the
    first (by id) nobody else holds. ``state=SKIPPED`` goes through what they skipped.
    ``None`` when nothing is left (or everything left is held by others)."""
    now = timezone.now()
    candidates = queue_items_for(queue=queue, user=user, state=state)
    held = candidates.filter(reserved_by=user, reserved_until__gt=now).first()
    if held is not None:
        _take(held.pk, queue=queue, user=user, now=now)
        held.refresh_from_db()
        return held
    for pk in candidates.filter(reservation_free(now, user)).values_list("pk", flat=True)[:50]:
        if _take(pk, queue=queue, user=user, now=now):
            return LabelingQueueItem.objects.get(pk=pk)
    return None


@transaction.atomic
def queue_item_reserve(*, item: LabelingQueueItem, user: User) -> bool:
    """Reserve ``item`` for ``user`` (who opened it); False when someone else holds it or it
    is not theirs to label."""
    if not queue_item_can_label(item=item, user=user):
        return False
    taken = _take(item.pk, queue=item.queue, user=user, now=timezone.now())
    item.refresh_from_db(fields=["reserved_by", "reserved_until"])
    return taken


def _lock_for(item: LabelingQueueItem, user: User) -> None:
    """Lock the item's row and check ``user`` may write to it now.

    The row lock orders concurrent writers of one item: the second one waits for the first to
    commit, then reads what it wrote (each statement sees the latest commit under PostgreSQL's
    READ COMMITTED; SQLite serialises write transactions), so checks made after the lock hold.
    """
    if not queue_item_can_label(item=item, user=user):
        raise QueueItemUnavailable("this item is not yours to label")
    holder_id, until = (
        LabelingQueueItem.objects.select_for_update()
        .filter(pk=item.pk)
        .values_list("reserved_by", "reserved_until")
        .get()
    )
    if holder_id not in (None, user.pk) and until is not None and until > timezone.now():
        holder = get_user_model()._default_manager.filter(pk=holder_id).first()
        raise QueueItemReserved(
            holder=holder.get_username() if holder else "someone else", until=until
        )


def _refuse_if_done_by_other(item: LabelingQueueItem, user: User) -> None:
    """In an open queue one completion finishes an item: refuse a second person's answers
    (call with the item's row locked, see ``_lock_for``)."""
    first = (
        LabelingQueueReview.objects.filter(item=item, state=ItemState.COMPLETED)
        .exclude(user=user)
        .select_related("user")
        .order_by("updated_at")
        .first()
    )
    if first is not None:
        raise QueueItemAlreadyDone(by=first.user.get_username())


def _review_set(item: LabelingQueueItem, user: User, state: str) -> None:
    now = timezone.now()
    review, created = LabelingQueueReview.objects.get_or_create(
        item=item, user=user, defaults={"state": state, "created_at": now, "updated_at": now}
    )
    if not created:
        review.state, review.updated_at = state, now
        review.save(update_fields=["state", "updated_at"])
    LabelingQueueItem.objects.filter(pk=item.pk, reserved_by=user).update(
        reserved_by=None, reserved_until=None
    )


def _clean_answers(
    configs: Sequence[AnnotationConfig], answers: Mapping[str, Any]
) -> list[tuple[AnnotationConfig, Answer]]:
    """Answers (config name → label, number or text) → each answered config with what to store,
    checked by ``rubric_answer``. Categorical and continuous configs must be answered; free text
    may be left empty."""
    by_name = {config.name: config for config in configs}
    errors: dict[str, str] = {
        name: "is not in this queue's rubric" for name in answers if name not in by_name
    }
    cleaned = []
    for config in configs:
        value = answers.get(config.name)
        try:
            answer = rubric_answer(
                config,
                label=value if config.kind == AnnotationConfigKind.CATEGORICAL else None,
                score=value if config.kind == AnnotationConfigKind.CONTINUOUS else None,
                explanation=value if config.kind == AnnotationConfigKind.FREEFORM else None,
                text_required=False,
            )
        except AnswerInvalid as exc:
            errors[config.name] = exc.message
            continue
        if answer is not None:
            cleaned.append((config, answer))
    if not errors and not cleaned:
        errors["__all__"] = "answer at least one question"
    if errors:
        raise QueueAnswersInvalid(errors)
    return cleaned


@transaction.atomic
def queue_item_submit(
    *, item: LabelingQueueItem, user: User, answers: Mapping[str, Any]
) -> list[Annotation]:
    """Write ``user``'s answers (config name → label, number or text) as human annotations on
    the item's target (source APP, identifier the username) and mark the item completed for
    them, in one transaction. Raises ``QueueItemUnavailable`` (``QueueItemReserved`` when
    someone else holds it, ``QueueItemAlreadyDone`` when someone else completed it first in an
    open queue) and ``QueueAnswersInvalid``; nothing is written then."""
    _lock_for(item, user)
    queue = item.queue
    if not assignee_ids(queue):
        _refuse_if_done_by_other(item, user)
    cleaned = _clean_answers(queue_configs(queue=queue), answers)
    target_id = item_target_id(item)
    annotations = annotations_upsert(
        items=[
            AnnotationInput(
                target_kind=queue.item_kind,
                target_id=target_id,
                name=config.name,
                annotator_kind=AnnotatorKind.HUMAN,
                label=answer.label,
                score=answer.score,
                explanation=answer.explanation,
                metadata={"labeling_queue": queue.name},
                identifier=user.get_username(),
            )
            for config, answer in cleaned
        ],
        source=AnnotationSource.APP,
        user=user,
        project=item.project,
    )
    _review_set(item, user, ItemState.COMPLETED)
    return annotations


@transaction.atomic
def queue_item_skip(*, item: LabelingQueueItem, user: User) -> str:
    """Pass over the item: SKIPPED for ``user`` unless they already completed it (their labels
    stay). Returns the item's state for them."""
    _lock_for(item, user)
    if LabelingQueueReview.objects.filter(item=item, user=user, state=ItemState.COMPLETED).exists():
        LabelingQueueItem.objects.filter(pk=item.pk, reserved_by=user).update(
            reserved_by=None, reserved_until=None
        )
        return ItemState.COMPLETED
    _review_set(item, user, ItemState.SKIPPED)
    return ItemState.SKIPPED
