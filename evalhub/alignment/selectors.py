"""The alignment comparison: the draft's agreement with people beside the current version's,
on the same items, and the items where the draft's answer differs from the current one."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Final

from django.db.models import QuerySet

from evalhub.alignment.models import AlignmentItem, AlignmentItemStatus, AlignmentRun
from evalhub.calibration.stats import Calibration, calibration_of
from evalhub.evaluators.models import Evaluator

FIXED: Final = "fixed"  # the draft is right where the current version was wrong
BROKEN: Final = "broken"  # the draft is wrong where the current version was right
CHANGED: Final = "changed"  # both wrong, differently
NEW: Final = "new"  # the current version has no result there
FLIP_KINDS: Final = (FIXED, BROKEN, CHANGED, NEW)
MAX_FLIPS: Final = 200


@dataclass(slots=True)
class Comparison:
    """``current`` and ``draft`` are measured on ``both``: the items that have a people's
    label, a current result and a draft result; ``draft_all`` on every item the draft judged."""

    run: AlignmentRun
    current: Calibration
    draft: Calibration
    draft_all: Calibration
    both: int
    flips: dict[str, int]
    flipped: list[tuple[str, AlignmentItem]] = field(default_factory=list)  # (kind, item)

    @property
    def better(self) -> bool | None:
        """Whether the draft agrees with people more than the current version (by kappa,
        else accuracy) on the same items; None without items to compare."""
        if not self.both:
            return None
        if self.draft.kappa is not None and self.current.kappa is not None:
            return self.draft.kappa > self.current.kappa
        return (self.draft.accuracy or 0) > (self.current.accuracy or 0)


def flip_kind(item: AlignmentItem) -> str | None:
    """How the draft's answer on ``item`` differs from the current version's, or None."""
    if item.draft_label is None:
        return None
    if item.current_label is None:
        return NEW
    if item.draft_label == item.current_label:
        return None
    if item.draft_label == item.human_label:
        return FIXED
    if item.current_label == item.human_label:
        return BROKEN
    return CHANGED


def alignment_comparison(*, run: AlignmentRun, flips: str | None = None) -> Comparison:
    """The comparison of a run (so far, while it runs). ``flips`` keeps one kind of flip in
    the list. One query for the items."""
    current_cells: Counter[tuple[str, str]] = Counter()
    draft_cells: Counter[tuple[str, str]] = Counter()
    every_draft: Counter[tuple[str, str]] = Counter()
    counts = dict.fromkeys(FLIP_KINDS, 0)
    flipped: list[tuple[str, AlignmentItem]] = []
    both = 0
    items = run.items.filter(status=AlignmentItemStatus.DONE).order_by("id")
    for item in items.select_related("span"):
        if item.draft_label is None:
            continue
        every_draft[(item.human_label, item.draft_label)] += 1
        if item.current_label is not None:
            both += 1
            current_cells[(item.human_label, item.current_label)] += 1
            draft_cells[(item.human_label, item.draft_label)] += 1
        kind = flip_kind(item)
        if kind is not None:
            counts[kind] += 1
            if (flips is None or flips == kind) and len(flipped) < MAX_FLIPS:
                flipped.append((kind, item))
    flipped.sort(key=lambda entry: FLIP_KINDS.index(entry[0]))
    return Comparison(
        run=run,
        current=calibration_of(current_cells),
        draft=calibration_of(draft_cells),
        draft_all=calibration_of(every_draft),
        both=both,
        flips=counts,
        flipped=flipped,
    )


def alignment_runs(*, evaluator: Evaluator) -> QuerySet[AlignmentRun]:
    return AlignmentRun.objects.filter(evaluator=evaluator).select_related(
        "project", "base_version", "saved_version", "created_by"
    )


def alignment_run_get(*, evaluator: Evaluator, run_id: int) -> AlignmentRun | None:
    return alignment_runs(evaluator=evaluator).filter(pk=run_id).first()


def alignment_items_errored(*, run: AlignmentRun, limit: int = 20) -> list[AlignmentItem]:
    return list(run.items.filter(status=AlignmentItemStatus.ERROR).order_by("id")[:limit])


__all__ = [
    "BROKEN",
    "CHANGED",
    "FIXED",
    "FLIP_KINDS",
    "NEW",
    "Comparison",
    "alignment_comparison",
    "alignment_items_errored",
    "alignment_run_get",
    "alignment_runs",
    "flip_kind",
]
