"""Disagreements routed to people: the items where a judge and a person (or two people) gave
different labels of one name, added to a review queue. The pairs are the agreement page's
(``annotations.agreement.rating_pairs``): the same pairing rule, the same disagreements."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from annotations.agreement import rating_pairs
from annotations.queues.models import LabelingQueue
from annotations.queues.services import queue_items_add
from annotations.store.selectors import agreement_ratings
from evalhub.calibration.models import DisagreementRouting
from evalhub.evaluators.models import Evaluator, EvaluatorKind
from evalhub.tasks.models import Task
from tracing.models import Project, Session, Span, Trace

_IDS = {"SPAN": "span_ids", "TRACE": "trace_ids", "SESSION": "session_ids"}


# The Celery task routing a task's new disagreements (evalhub.calibration.jobs).
ROUTE = "calibration.disagreements_route"


class RoutingInvalid(ValueError):
    def __init__(self, field: str, message: str) -> None:
        self.field, self.message = field, message
        super().__init__(f"{field}: {message}")


@dataclass(frozen=True, slots=True)
class Routed:
    disagreements: int  # items with a disagreement of the kind asked for
    added: int  # newly queued
    already_queued: int
    other_kind: int  # disagreements on items the queue does not take (another target kind)


def disagreement_targets(
    *,
    project: Project,
    name: str,
    judge: bool = True,
    people: bool = False,
    among: Collection[tuple[str, str]] | None = None,
) -> list[tuple[str, str]]:
    """(target kind, id) of the items where labels named ``name`` disagree: a judge's with a
    person's (``judge``), and one person's with another's (``people``); in a stable order. A
    trace's label paired with the judge's root-span result counts for the trace."""
    found: dict[tuple[str, str], None] = {}
    for _name, first, second in rating_pairs(agreement_ratings(project=project, name=name)):
        if first.label is None or second.label is None or first.label == second.label:
            continue
        if (second.rater.is_human and not people) or (not second.rater.is_human and not judge):
            continue
        found.setdefault((first.target.kind, first.target.key))
    if among is not None:
        return sorted(key for key in found if key in among)
    return sorted(found)


@transaction.atomic
def disagreements_route(
    *,
    project: Project,
    name: str,
    queue: LabelingQueue,
    judge: bool = True,
    people: bool = False,
    among: Collection[tuple[str, str]] | None = None,
) -> Routed:
    """Queue the disagreements on ``name`` in ``project`` for review (items already in the
    queue are counted, not added twice); only those on ``among`` (kind, id) when given."""
    targets = disagreement_targets(
        project=project, name=name, judge=judge, people=people, among=among
    )
    mine = [key for kind, key in targets if kind == queue.item_kind]
    added = already = 0
    if mine:
        result = queue_items_add(queue=queue, project=project, **{_IDS[queue.item_kind]: mine})
        added, already = result.added, result.already_queued
    return Routed(
        disagreements=len(targets),
        added=added,
        already_queued=already,
        other_kind=len(targets) - len(mine),
    )


# --- a task's automatic routing ----------------------------------------------------------------


def routing_name(routing: DisagreementRouting) -> str | None:
    """The label name whose disagreements ``routing`` watches: its evaluator's results, else
    the task's first LLM judge's."""
    if routing.evaluator is not None:
        return str(routing.evaluator.annotation_name)
    entry = (
        routing.task.task_evaluators.filter(evaluator__kind=EvaluatorKind.LLM)
        .select_related("evaluator")
        .order_by("id")
        .first()
    )
    return str(entry.evaluator.annotation_name) if entry is not None else None


@transaction.atomic
def disagreement_routing_set(
    *,
    task: Task,
    queue: LabelingQueue,
    judge: bool = True,
    people: bool = False,
    evaluator: Evaluator | None = None,
) -> DisagreementRouting:
    """Route the task's disagreements into ``queue`` as labels arrive. Raises
    ``RoutingInvalid`` naming the field (nothing written)."""
    if not judge and not people:
        raise RoutingInvalid("judge", "choose judge-vs-person or person-vs-person disagreements")
    if queue.item_kind.lower() != task.granularity:
        raise RoutingInvalid(
            "queue", f"takes {queue.item_kind.lower()}s; the task evaluates {task.granularity}s"
        )
    if evaluator is not None and not task.task_evaluators.filter(evaluator=evaluator).exists():
        raise RoutingInvalid("evaluator", f"{evaluator.name} is not one of the task's")
    if evaluator is None and not task.task_evaluators.filter(evaluator__kind="LLM").exists():
        raise RoutingInvalid("evaluator", "the task has no LLM judge whose labels to compare")
    routing, _ = DisagreementRouting.objects.update_or_create(
        task=task,
        defaults={
            "queue": queue,
            "judge": bool(judge),
            "people": bool(people),
            "evaluator": evaluator,
            "updated_at": timezone.now(),
        },
    )
    return routing


def disagreement_routing_clear(*, task: Task) -> None:
    DisagreementRouting.objects.filter(task=task).delete()


def routing_apply(*, routing_id: int, targets: Collection[tuple[str, str]] | None) -> Routed | None:
    """Route the disagreements of a task's routing (the job's work): on ``targets`` — the
    items whose labels just arrived — or on every item (None). None when the routing is gone
    or watches no label."""
    routing = (
        DisagreementRouting.objects.select_related("task__project", "queue", "evaluator")
        .filter(pk=routing_id)
        .first()
    )
    if routing is None:
        return None
    name = routing_name(routing)
    project = routing.task.project
    if name is None or project is None:  # a dataset task's results are not routed
        return None
    routed = disagreements_route(
        project=project,
        name=name,
        queue=routing.queue,
        judge=routing.judge,
        people=routing.people,
        among=set(targets) if targets is not None else None,
    )
    if routed.added:
        DisagreementRouting.objects.filter(pk=routing.pk).update(routed=F("routed") + routed.added)
    return routed


_TARGETS: dict[str, tuple[type[Span] | type[Trace] | type[Session], str]] = {
    "SPAN": (Span, "span_id"),
    "TRACE": (Trace, "trace_id"),
    "SESSION": (Session, "session_id"),
}


def routings_for(*, written: Iterable[tuple[int, str, str, int]]) -> dict[int, list[list[str]]]:
    """The routings that labels just written concern — ``written`` is (project id, label
    name, target kind, the target's row id) — with the items of each: routing id →
    [[kind, id], …]. A few queries, whatever the number of labels."""
    rows = list(written)
    routings = list(
        DisagreementRouting.objects.filter(
            task__project_id__in={project_id for project_id, *_ in rows}
        ).select_related("task", "evaluator")
    )
    watched = {(r.task.project_id, routing_name(r)): r for r in routings}
    wanted = [row for row in rows if (row[0], row[1]) in watched]
    pks: dict[str, set[int]] = {}
    for _project, _name, kind, pk in wanted:
        pks.setdefault(kind, set()).add(pk)
    keys: dict[tuple[str, int], list[tuple[str, str]]] = {}
    for kind, ids in pks.items():
        model, field = _TARGETS[kind]
        for pk, key in model.objects.filter(pk__in=ids).values_list("pk", field):
            keys[(kind, pk)] = [(kind, key)]
    # A judge's result on a root span pairs with people's labels on its trace (the pairing
    # rule): the trace is an item to check too.
    roots = Span.objects.filter(pk__in=pks.get("SPAN", ()), parent_id__isnull=True)
    for pk, trace_id in roots.values_list("pk", "trace__trace_id"):
        keys[("SPAN", pk)].append(("TRACE", trace_id))
    found: dict[int, set[tuple[str, str]]] = {}
    for project_id, name, kind, pk in wanted:
        for target in keys.get((kind, pk), []):
            found.setdefault(watched[(project_id, name)].pk, set()).add(target)
    return {routing_id: [list(t) for t in sorted(targets)] for routing_id, targets in found.items()}


__all__ = [
    "ROUTE",
    "Routed",
    "RoutingInvalid",
    "disagreement_routing_clear",
    "disagreement_routing_set",
    "disagreement_targets",
    "disagreements_route",
    "routing_apply",
    "routing_name",
    "routings_for",
]
