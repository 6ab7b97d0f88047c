"""Writes for labeling queues: queues and their items (by id, or from a filter). Labelling
them — reservations and the answers people give — is ``annotations.queues.labelling``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from django.contrib.auth.models import User
from django.db import models, transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from annotations.models import (
    AnnotationConfig,
    TargetKind,
)
from annotations.queues.models import (
    AssignmentMode,
    LabelingQueue,
    LabelingQueueItem,
    LabelingQueueReview,
)
from annotations.queues.selectors import (
    KIND_NOUNS,
    assignee_ids,
)
from annotations.store.services import MAX_NAME_LENGTH
from evalhub.core.fields import FieldInvalid, NameTaken, name_free, save_named
from tracing.models import Project, Session, Span, Trace
from tracing.query import compile_filter, session_matches, trace_matches
from tracing.query.lists import span_queryset

MAX_ITEMS_PER_ADD: Final = 10_000
# Per item kind: the model, the queue item's foreign key to it, and the ids' name in requests.
_KINDS: Final[dict[str, tuple[type[models.Model], str, str]]] = {
    TargetKind.SPAN: (Span, "span_id", "span_ids"),
    TargetKind.TRACE: (Trace, "trace_id", "trace_ids"),
    TargetKind.SESSION: (Session, "session_id", "session_ids"),
}


class QueueInvalid(FieldInvalid):
    """Queue input that cannot be used."""


class QueueNameTaken(NameTaken):
    noun = "queue"


class QueueItemsNotFound(Exception):
    """Ids that name no span, trace or session (in the project); nothing was added."""

    def __init__(self, *, field: str, missing: Sequence[str]) -> None:
        self.field, self.missing = field, list(missing)
        super().__init__(f"{field}: not found: {', '.join(self.missing)}")


@dataclass(frozen=True, slots=True)
class QueueItemsAdded:
    added: int
    already_queued: int


# --- queues -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _CleanedQueue:
    name: str
    instructions: str
    item_kind: str
    assignment_mode: str
    hide_machine_results: bool


def _clean_queue(
    *,
    name: str,
    instructions: str | None,
    item_kind: str,
    assignment_mode: str,
    configs: Sequence[AnnotationConfig],
    hide_machine_results: bool = False,
) -> _CleanedQueue:
    name = name.strip() if isinstance(name, str) else ""
    if not name:
        raise QueueInvalid(field="name", message="must not be empty")
    if len(name) > MAX_NAME_LENGTH:
        raise QueueInvalid(field="name", message=f"is longer than {MAX_NAME_LENGTH} characters")
    kind = str(item_kind or "").upper()
    if kind not in TargetKind.values:
        raise QueueInvalid(
            field="item_kind",
            message=f"must be one of {', '.join(TargetKind.values)} (got {item_kind!r})",
        )
    mode = str(assignment_mode or "").upper()
    if mode not in AssignmentMode.values:
        raise QueueInvalid(
            field="assignment_mode",
            message=f"must be one of {', '.join(AssignmentMode.values)} (got {assignment_mode!r})",
        )
    if not configs:
        raise QueueInvalid(field="configs", message="choose at least one annotation config")
    return _CleanedQueue(
        name=name,
        instructions=instructions or "",
        item_kind=kind,
        assignment_mode=mode,
        hide_machine_results=bool(hide_machine_results),
    )


def _save_queue(
    queue: LabelingQueue,
    cleaned: _CleanedQueue,
    configs: Sequence[AnnotationConfig],
    assignees: Sequence[User],
) -> LabelingQueue:
    name_free(LabelingQueue, cleaned.name, pk=queue.pk, taken=QueueNameTaken)
    for attr in _CleanedQueue.__slots__:
        setattr(queue, attr, getattr(cleaned, attr))
    queue.updated_at = timezone.now()
    save_named(queue, taken=QueueNameTaken)
    queue.configs.set(configs)
    queue.assignees.set(assignees)
    return queue


@transaction.atomic
def queue_create(
    *,
    name: str,
    item_kind: str,
    configs: Sequence[AnnotationConfig],
    assignees: Sequence[User] = (),
    assignment_mode: str = AssignmentMode.ALL,
    instructions: str | None = None,
    user: User | None = None,
    hide_machine_results: bool = False,
) -> LabelingQueue:
    """Create a queue. Raises ``QueueInvalid`` naming the field (name, item_kind,
    assignment_mode, configs) and ``QueueNameTaken``. ``hide_machine_results``: evaluators'
    results on an item are hidden from whoever labels it until they submit."""
    cleaned = _clean_queue(
        name=name,
        instructions=instructions,
        item_kind=item_kind,
        assignment_mode=assignment_mode,
        configs=configs,
        hide_machine_results=hide_machine_results,
    )
    return _save_queue(LabelingQueue(created_by=user), cleaned, configs, assignees)


@transaction.atomic
def queue_update(
    *,
    queue: LabelingQueue,
    name: str,
    item_kind: str,
    configs: Sequence[AnnotationConfig],
    assignees: Sequence[User],
    assignment_mode: str,
    instructions: str | None = None,
    hide_machine_results: bool | None = None,
) -> LabelingQueue:
    """Replace the queue's settings. Its item kind and assignment mode stay as they are once it
    has items. In round robin, the pending items of people no longer assigned are dealt anew
    among the assignees (and whoever held them lets go)."""
    queue = LabelingQueue.objects.select_for_update().get(pk=queue.pk)
    cleaned = _clean_queue(
        name=name,
        instructions=instructions,
        item_kind=item_kind,
        assignment_mode=assignment_mode,
        configs=configs,
        hide_machine_results=(
            queue.hide_machine_results if hide_machine_results is None else hide_machine_results
        ),
    )
    has_items = queue.items.exists()
    if has_items and cleaned.item_kind != queue.item_kind:
        raise QueueInvalid(field="item_kind", message="cannot change once the queue has items")
    if has_items and cleaned.assignment_mode != queue.assignment_mode:
        raise QueueInvalid(
            field="assignment_mode", message="cannot change once the queue has items"
        )
    queue = _save_queue(queue, cleaned, configs, assignees)
    if queue.assignment_mode == AssignmentMode.ROUND_ROBIN:
        _redeal(queue)
    return queue


def _redeal(queue: LabelingQueue) -> None:
    ids = assignee_ids(queue)
    if not ids:
        return
    done_by_assignee = LabelingQueueReview.objects.filter(
        item=OuterRef("pk"), user=OuterRef("assigned_to")
    )
    orphans = list(
        LabelingQueueItem.objects.filter(queue=queue)
        .exclude(assigned_to__in=ids)
        .filter(~Exists(done_by_assignee))
        .order_by("id")
    )
    for item in orphans:
        item.assigned_to_id = ids[queue.rotation % len(ids)]
        item.reserved_by_id, item.reserved_until = None, None
        queue.rotation += 1
    LabelingQueueItem.objects.bulk_update(
        orphans, ["assigned_to", "reserved_by", "reserved_until"], batch_size=1000
    )
    queue.save(update_fields=["rotation"])


# --- adding items -----------------------------------------------------------------------------


def _create_items(queue: LabelingQueue, targets: Sequence[tuple[int, int]]) -> QueueItemsAdded:
    """Add ``(target pk, project pk)`` pairs not yet in the queue, dealing them in turn in
    round robin. The queue row is locked, so adds to one queue run one after the other."""
    queue = LabelingQueue.objects.select_for_update().get(pk=queue.pk)
    _, fk, _ = _KINDS[queue.item_kind]
    wanted = list(dict.fromkeys(targets))
    existing = set(
        LabelingQueueItem.objects.filter(
            queue=queue, **{f"{fk}__in": [pk for pk, _ in wanted]}
        ).values_list(fk, flat=True)
    )
    ids = assignee_ids(queue)
    round_robin = bool(ids) and queue.assignment_mode == AssignmentMode.ROUND_ROBIN
    now = timezone.now()
    rows = []
    for pk, project_id in wanted:
        if pk in existing:
            continue
        assigned = None
        if round_robin:
            assigned = ids[queue.rotation % len(ids)]
            queue.rotation += 1
        rows.append(
            LabelingQueueItem(
                queue=queue,
                project_id=project_id,
                assigned_to_id=assigned,
                created_at=now,
                **{fk: pk},
            )
        )
    LabelingQueueItem.objects.bulk_create(rows, batch_size=1000)
    if round_robin:
        queue.save(update_fields=["rotation"])
    return QueueItemsAdded(added=len(rows), already_queued=len(wanted) - len(rows))


def _ids_clean(field: str, ids: Any) -> list[str]:
    if isinstance(ids, str) or not isinstance(ids, Sequence):
        raise QueueInvalid(field=field, message="must be a list of ids")
    cleaned: list[str] = []
    for index, value in enumerate(ids):
        if not isinstance(value, str) or not value.strip():
            raise QueueInvalid(field=f"{field}[{index}]", message="must be a non-empty string")
        cleaned.append(value)  # as given: ids from production may start or end with spaces
    cleaned = list(dict.fromkeys(cleaned))
    if not cleaned:
        raise QueueInvalid(field=field, message="must not be empty")
    if len(cleaned) > MAX_ITEMS_PER_ADD:
        raise QueueInvalid(field=field, message=f"at most {MAX_ITEMS_PER_ADD:,} ids at once")
    return cleaned


@transaction.atomic
def queue_items_add(
    *,
    queue: LabelingQueue,
    span_ids: Sequence[str] | None = None,
    trace_ids: Sequence[str] | None = None,
    session_ids: Sequence[str] | None = None,
    project: Project | None = None,
) -> QueueItemsAdded:
    """Add spans, traces or sessions by their ids — the kind the queue takes. All or nothing:
    ``QueueInvalid`` for the wrong kind or malformed ids, ``QueueItemsNotFound`` listing every
    id not found (in ``project``, when given; session ids need it). Items already in the
    queue are counted, not added again."""
    given = {
        name: value
        for name, value in (
            ("span_ids", span_ids),
            ("trace_ids", trace_ids),
            ("session_ids", session_ids),
        )
        if value is not None
    }
    model, _, expected = _KINDS[queue.item_kind]
    if len(given) != 1:
        raise QueueInvalid(field=expected, message=f"send the items as {expected}")
    field, raw = next(iter(given.items()))
    if field != expected:
        raise QueueInvalid(
            field=field,
            message=f"this queue takes {KIND_NOUNS[queue.item_kind][1]}: send {expected}",
        )
    ids = _ids_clean(field, raw)
    key = expected[:-1]  # span_id / trace_id / session_id
    rows = model._default_manager.filter(**{f"{key}__in": ids})
    if project is not None:
        rows = rows.filter(project=project)
    elif queue.item_kind == TargetKind.SESSION:
        raise QueueInvalid(field="project", message="session ids need their project")
    found = {
        key_value: (pk, project_id)
        for pk, key_value, project_id in rows.values_list("pk", key, "project_id")
    }
    missing = [value for value in ids if value not in found]
    if missing:
        raise QueueItemsNotFound(field=field, missing=missing)
    return _create_items(queue, [found[value] for value in ids])


def _filter_candidates(queue: LabelingQueue, project: Project, filter_text: str) -> QuerySet[Any]:
    """The spans a filter selects, or the traces / sessions with a span that matches it
    (``tracing.query.units``), newest first."""
    if queue.item_kind == TargetKind.SPAN:
        return span_queryset(project=project, filter_expr=filter_text)
    condition = compile_filter(filter_text) & Q(project=project)
    if queue.item_kind == TargetKind.TRACE:
        rows: QuerySet[Any] = Trace.objects.filter(trace_matches(condition, trace="pk"))
    else:
        rows = Session.objects.filter(session_matches(condition, session="pk"))
    return rows.filter(project=project).order_by("-start_time", "-id")


@transaction.atomic
def queue_items_add_from_filter(
    *,
    queue: LabelingQueue,
    project: Project,
    filter_text: str,
    limit: int | None = None,
    sample_percent: float = 100.0,
    rng: random.Random | None = None,
) -> QueueItemsAdded:
    """Add what a filter (the filter language, on the project's spans) selects: the spans, or
    the traces / sessions with a matching span; newest first, each kept with probability
    ``sample_percent`` %, at most ``limit`` of them (items already queued are passed over and
    counted). Without ``limit``, selecting more than ``MAX_ITEMS_PER_ADD`` new items is an
    error. Raises ``FilterError`` for a filter that cannot be read, ``QueueInvalid`` for a bad
    ``limit`` or ``sample_percent``; nothing is added then."""
    if limit is not None and (
        isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_ITEMS_PER_ADD
    ):
        raise QueueInvalid(
            field="limit", message=f"must be a whole number from 1 to {MAX_ITEMS_PER_ADD:,}"
        )
    if (
        isinstance(sample_percent, bool)
        or not isinstance(sample_percent, int | float)
        or not math.isfinite(sample_percent)
        or not 0 < sample_percent <= 100
    ):
        raise QueueInvalid(field="sample_percent", message="must be more than 0 and at most 100")
    candidates = _filter_candidates(queue, project, filter_text)
    _, fk, _ = _KINDS[queue.item_kind]
    queued = LabelingQueueItem.objects.filter(queue=queue, **{fk: OuterRef("pk")})
    already = candidates.filter(Exists(queued)).count()
    rng = rng or random.Random()  # noqa: S311 - sampling, not secrecy
    cap = limit if limit is not None else MAX_ITEMS_PER_ADD
    chosen: list[int] = []
    for pk in candidates.filter(~Exists(queued)).values_list("pk", flat=True).iterator(2000):
        if sample_percent < 100 and rng.random() * 100 >= sample_percent:
            continue
        chosen.append(pk)
        if len(chosen) > cap:
            break
    if len(chosen) > cap:
        if limit is None:
            raise QueueInvalid(
                field="limit",
                message=(
                    f"the filter selects more than {MAX_ITEMS_PER_ADD:,} new "
                    f"{KIND_NOUNS[queue.item_kind][1]}: set a cap (at most "
                    f"{MAX_ITEMS_PER_ADD:,}) or a lower sampling rate"
                ),
            )
        chosen = chosen[:cap]
    result = _create_items(queue, [(pk, project.pk) for pk in chosen])
    return QueueItemsAdded(added=result.added, already_queued=already)
