"""Disagreements routed to people: the items where a judge and a person (or two people) gave
different labels of one name, added to a review queue. The pairs are the agreement page's
(``annotations.agreement.rating_pairs``): the same pairing rule, the same disagreements."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from annotations.agreement import rating_pairs
from annotations.queues.models import LabelingQueue
from annotations.queues.services import queue_items_add
from annotations.store.selectors import agreement_ratings
from tracing.models import Project

_IDS = {"SPAN": "span_ids", "TRACE": "trace_ids", "SESSION": "session_ids"}


@dataclass(frozen=True, slots=True)
class Routed:
    disagreements: int  # items with a disagreement of the kind asked for
    added: int  # newly queued
    already_queued: int
    other_kind: int  # disagreements on items the queue does not take (another target kind)


def disagreement_targets(
    *, project: Project, name: str, judge: bool = True, people: bool = False
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
    return sorted(found)


@transaction.atomic
def disagreements_route(
    *,
    project: Project,
    name: str,
    queue: LabelingQueue,
    judge: bool = True,
    people: bool = False,
) -> Routed:
    """Queue the disagreements on ``name`` in ``project`` for review (items already in the
    queue are counted, not added twice)."""
    targets = disagreement_targets(project=project, name=name, judge=judge, people=people)
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


__all__ = ["Routed", "disagreement_targets", "disagreements_route"]
