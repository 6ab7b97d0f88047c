"""The shadow comparison: the candidate's and the active version's answers on the same items —
their label and score distributions over time, their agreement with each other and with
people (Cohen's κ with intervals, pairs), and the items where they differ.

The active side is the evaluator's stored result (an annotation of its name by a machine) on
each item the candidate judged; people's side their labels of the same name on the same item
(their majority; a tie has no truth). Only the candidate's own rows are read from
``ShadowResult``: nothing else in EvalHub reads that table.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

from django.db.models import QuerySet

from annotations.models import Annotation
from annotations.naming import HUMAN, MACHINE_KINDS, result_name
from evalhub.calibration.stats import Calibration, calibration_of
from evalhub.core.buckets import BUCKET_LENGTH, Bucket
from evalhub.evaluators.models import Evaluator
from evalhub.shadow.models import ShadowResult, ShadowStatus, ShadowVersion
from evalhub.tasks.models import Task

FIXED: Final = "fixed"  # the candidate agrees with people where the active version did not
BROKEN: Final = "broken"  # the candidate disagrees with people where the active version agreed
CHANGED: Final = "changed"  # a different answer, people's label unknown or neither matches
FLIP_KINDS: Final = (FIXED, BROKEN, CHANGED)
MAX_FLIPS: Final = 200
_TARGET_FIELD: Final = {"SPAN": "span_id", "TRACE": "trace_id", "SESSION": "session_id"}


def shadow_list(*, task: Task | None = None, evaluator: Evaluator | None = None) -> QuerySet:
    shadows = ShadowVersion.objects.select_related(
        "task", "task__project", "evaluator", "base_version", "promoted_version"
    )
    if task is not None:
        shadows = shadows.filter(task=task)
    if evaluator is not None:
        shadows = shadows.filter(evaluator=evaluator)
    return shadows.order_by("-created_at", "-id")


def shadow_get(*, task: Task, shadow_id: int) -> ShadowVersion | None:
    return shadow_list(task=task).filter(pk=shadow_id).first()


def shadow_running(*, task: Task, evaluator: Evaluator) -> ShadowVersion | None:
    return shadow_list(task=task, evaluator=evaluator).filter(status=ShadowStatus.RUNNING).first()


@dataclass(slots=True)
class ShadowItem:
    """One item the candidate judged, with the active version's answer and people's label."""

    result: ShadowResult
    active_label: str | None
    active_score: float | None
    active_version: int | None
    human_label: str | None

    @property
    def flip(self) -> str | None:
        candidate = self.result.label
        if candidate is None or self.active_label is None or candidate == self.active_label:
            return None
        if self.human_label is not None and candidate == self.human_label:
            return FIXED
        if self.human_label is not None and self.active_label == self.human_label:
            return BROKEN
        return CHANGED


@dataclass(slots=True)
class ShadowBucket:
    """One time bucket: each side's label counts and mean score over the items in it."""

    start: datetime
    active: Counter[str] = field(default_factory=Counter)
    candidate: Counter[str] = field(default_factory=Counter)
    active_scores: list[float] = field(default_factory=list)
    candidate_scores: list[float] = field(default_factory=list)

    @property
    def active_score(self) -> float | None:
        return sum(self.active_scores) / len(self.active_scores) if self.active_scores else None

    @property
    def candidate_score(self) -> float | None:
        scores = self.candidate_scores
        return sum(scores) / len(scores) if scores else None


@dataclass(slots=True)
class ShadowComparison:
    """``between``: the active version's labels (rows) against the candidate's, on the items
    both labelled; ``active`` and ``candidate``: each against people, on the items people,
    the active version and the candidate all labelled (the same items for both)."""

    shadow: ShadowVersion
    judged: int
    errored: int
    labels: list[str]
    buckets: list[ShadowBucket]
    between: Calibration
    active: Calibration
    candidate: Calibration
    flips: dict[str, int]
    flipped: list[ShadowItem] = field(default_factory=list)

    @property
    def with_people(self) -> int:
        return self.active.pairs

    @property
    def better(self) -> bool | None:
        """Whether the candidate agrees with people more than the active version (by κ, else
        accuracy) on the same items; None without such items."""
        if not self.with_people:
            return None
        if self.candidate.kappa is not None and self.active.kappa is not None:
            return self.candidate.kappa > self.active.kappa
        return (self.candidate.accuracy or 0) > (self.active.accuracy or 0)


def _annotations(
    shadow: ShadowVersion, kind: str, pks: list[int], *, human: bool
) -> QuerySet[Annotation]:
    project_id = shadow.task.project_id
    if project_id is None:  # a dataset's task has no shadows
        return Annotation.objects.none()
    found = Annotation.objects.filter(
        project_id=project_id,
        name=result_name(shadow.evaluator.name),
        target_kind=kind,
        **{f"{_TARGET_FIELD[kind]}__in": pks},
    )
    if kind == "SPAN":
        found = found.filter(document_position__isnull=True)
    if human:
        return found.filter(annotator_kind=HUMAN, label__isnull=False)
    return found.filter(annotator_kind__in=MACHINE_KINDS)


def shadow_items(shadow: ShadowVersion) -> list[ShadowItem]:
    """Every item the candidate judged, in time order, with the other two answers."""
    results = list(shadow.results.order_by("when", "id"))
    by_kind: dict[str, list[int]] = {}
    for result in results:
        by_kind.setdefault(result.target_kind, []).append(result.target_pk)
    active: dict[tuple[str, int], tuple[str | None, float | None, int | None]] = {}
    people: dict[tuple[str, int], Counter[str]] = {}
    for kind, pks in by_kind.items():
        column = _TARGET_FIELD[kind]
        for start in range(0, len(pks), 5000):
            chunk = pks[start : start + 5000]
            for pk, label, score, metadata in _annotations(
                shadow, kind, chunk, human=False
            ).values_list(column, "label", "score", "metadata"):
                version = (metadata or {}).get("version")
                active[(kind, pk)] = (label, score, version if isinstance(version, int) else None)
            for pk, label in _annotations(shadow, kind, chunk, human=True).values_list(
                column, "label"
            ):
                people.setdefault((kind, pk), Counter())[label] += 1
    items = []
    for result in results:
        key = (result.target_kind, result.target_pk)
        label, score, version = active.get(key, (None, None, None))
        items.append(ShadowItem(result, label, score, version, _majority(people.get(key))))
    return items


def _majority(labels: Counter[str] | None) -> str | None:
    if not labels:
        return None
    (first, count), *rest = labels.most_common(2)
    return None if rest and rest[0][1] == count else first


def _bucket_start(moment: datetime, bucket: Bucket) -> datetime:
    moment = moment.astimezone(UTC)
    if bucket == "hour":
        return moment.replace(minute=0, second=0, microsecond=0)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if bucket == "day":
        return day
    return day - BUCKET_LENGTH["day"] * day.weekday()


def shadow_comparison(*, shadow: ShadowVersion, bucket: Bucket = "hour") -> ShadowComparison:
    """The candidate beside the active version (see the module's docstring)."""
    items = shadow_items(shadow)
    buckets: dict[datetime, ShadowBucket] = {}
    between: Counter[tuple[str, str]] = Counter()
    active: Counter[tuple[str, str]] = Counter()
    candidate: Counter[tuple[str, str]] = Counter()
    flips: dict[str, int] = dict.fromkeys(FLIP_KINDS, 0)
    flipped: list[ShadowItem] = []
    labels: Counter[str] = Counter()
    errored = 0
    for item in items:
        result = item.result
        if result.error:
            errored += 1
        moment = result.when or result.created_at
        start = _bucket_start(moment, bucket)
        row = buckets.setdefault(start, ShadowBucket(start=start))
        if result.label is not None:
            row.candidate[result.label] += 1
            labels[result.label] += 1
        if item.active_label is not None:
            row.active[item.active_label] += 1
            labels[item.active_label] += 1
        if result.score is not None:
            row.candidate_scores.append(result.score)
        if item.active_score is not None:
            row.active_scores.append(item.active_score)
        if result.label is None or item.active_label is None:
            continue
        between[(item.active_label, result.label)] += 1
        if item.human_label is not None:
            active[(item.human_label, item.active_label)] += 1
            candidate[(item.human_label, result.label)] += 1
        kind = item.flip
        if kind is not None:
            flips[kind] += 1
            if len(flipped) < MAX_FLIPS:
                flipped.append(item)
    order = {FIXED: 0, BROKEN: 1, CHANGED: 2}
    flipped.sort(key=lambda item: order[item.flip or CHANGED])
    return ShadowComparison(
        shadow=shadow,
        judged=len(items),
        errored=errored,
        labels=[label for label, _ in labels.most_common()],
        buckets=[buckets[start] for start in sorted(buckets)],
        between=calibration_of(between),
        active=calibration_of(active),
        candidate=calibration_of(candidate),
        flips=flips,
        flipped=flipped,
    )
