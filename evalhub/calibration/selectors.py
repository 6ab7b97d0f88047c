"""Live calibration: how each evaluator version agrees with people, over time.

The pairs are the agreement page's (``annotations.store.selectors.agreement_ratings`` and
``annotations.agreement.rating_pairs``, one pairing rule): a person's label and an evaluator's
result of the same name on the same span, trace or session — or a trace's label with the
evaluator's root-span result. Each machine result names the version that produced it; pairs
are grouped by that version and placed in time by the rated item's start time, as Score trends
place results. Only labels are calibrated (scores have the agreement page's Pearson's r).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.db.models import Count, Exists, F, OuterRef, Q
from django.db.models.fields.json import KeyTransform
from django.db.models.functions import Coalesce, TruncDay, TruncHour, TruncWeek

from annotations.agreement import PAIRING_RULE, rating_pairs
from annotations.models import Annotation, AnnotatorKind, TargetKind
from annotations.naming import MACHINE_KINDS
from annotations.store.selectors import agreement_ratings
from evalhub.calibration.stats import (
    Calibration,
    calibration_of,
)
from evalhub.core.buckets import BUCKET_LENGTH, BUCKETS, Bucket
from tracing.models import Project


@dataclass(frozen=True, slots=True)
class CalibrationPair:
    """One person's label against one judge result."""

    version: int | None  # the evaluator version of the judge's result (None: not recorded)
    when: datetime | None  # the rated item's start time
    human: str
    judge: str


def calibration_pairs(
    *, project: Project | None, name: str, ratings: list[Any] | None = None
) -> list[CalibrationPair]:
    """Every (person, evaluator) label pair of results named ``name`` in ``project`` (every
    project for None)."""
    ratings = ratings if ratings is not None else agreement_ratings(project=project, name=name)
    pairs = []
    for _name, first, second in rating_pairs(ratings):
        if second.rater.is_human or first.label is None or second.label is None:
            continue
        pairs.append(CalibrationPair(second.version, second.when, first.label, second.label))
    return pairs


@dataclass(frozen=True, slots=True)
class CalibrationBucket:
    start: datetime
    calibration: Calibration


@dataclass(slots=True)
class VersionCalibration:
    version: int | None
    overall: Calibration
    buckets: list[CalibrationBucket] = field(default_factory=list)  # oldest first


@dataclass(slots=True)
class EvaluatorCalibration:
    """An evaluation name's calibration: per version (newest first) and over every version
    (``counts``, what corrected rates use)."""

    name: str
    bucket: Bucket
    versions: list[VersionCalibration]
    counts: Counter[tuple[str, str]]
    overall: Calibration
    rule: str = PAIRING_RULE

    @property
    def pairs(self) -> int:
        return self.overall.pairs


Cells = Counter[tuple[int | None, datetime | None, str, str]]  # version, bucket, person, judge


def pair_cells(
    pairs: list[CalibrationPair],
    *,
    bucket: Bucket = "day",
    start: datetime | None = None,
    end: datetime | None = None,
) -> Cells:
    """Count ``pairs`` by version, ``bucket`` (UTC, as TruncHour/Day/Week count) and labels,
    for items started in ``[start, end)`` (either end open; pairs without a time count — in
    no bucket — only when the range is open). One pass over the pairs."""
    if bucket not in BUCKETS:
        raise ValueError(f"bucket must be one of {', '.join(BUCKETS)}")
    step = int(BUCKET_LENGTH[bucket].total_seconds())
    offset = 4 * 86400 if bucket == "week" else 0  # the epoch was a Thursday; weeks: Monday
    bounded = start is not None or end is not None
    low = start.timestamp() if start is not None else None
    high = end.timestamp() if end is not None else None
    slots: Counter[tuple[int | None, int | None, str, str]] = Counter()
    for pair in pairs:
        when = pair.when
        if when is None:
            if not bounded:
                slots[(pair.version, None, pair.human, pair.judge)] += 1
            continue
        moment = when.timestamp()
        if (low is not None and moment < low) or (high is not None and moment >= high):
            continue
        slot = int((moment - offset) // step) * step + offset
        slots[(pair.version, slot, pair.human, pair.judge)] += 1
    cells: Cells = Counter()
    for (version, seconds, human, judge), count in slots.items():
        at = datetime.fromtimestamp(seconds, UTC) if seconds is not None else None
        cells[(version, at, human, judge)] += count
    return cells


def calibration_summarize(
    pairs: list[CalibrationPair],
    *,
    name: str,
    bucket: Bucket = "day",
    start: datetime | None = None,
    end: datetime | None = None,
) -> EvaluatorCalibration:
    """Every metric of ``pairs`` per version, over the range and per ``bucket``."""
    cells = pair_cells(pairs, bucket=bucket, start=start, end=end)
    return calibration_from_cells(cells, name=name, bucket=bucket)


def calibration_from_cells(cells: Cells, *, name: str, bucket: Bucket) -> EvaluatorCalibration:
    """Every metric, per version (newest first) over the range and per bucket, from counts."""
    per_version: dict[int | None, Counter[tuple[str, str]]] = {}
    per_bucket: dict[int | None, dict[datetime, Counter[tuple[str, str]]]] = {}
    every: Counter[tuple[str, str]] = Counter()
    for (version, moment, human, judge), count in cells.items():
        per_version.setdefault(version, Counter())[(human, judge)] += count
        every[(human, judge)] += count
        if moment is not None:
            by_slot = per_bucket.setdefault(version, {})
            by_slot.setdefault(moment, Counter())[(human, judge)] += count
    versions = [
        VersionCalibration(
            version=version,
            overall=calibration_of(per_version[version]),
            buckets=[
                CalibrationBucket(moment, calibration_of(counts))
                for moment, counts in sorted(per_bucket.get(version, {}).items())
            ],
        )
        for version in sorted(per_version, key=lambda v: -1 if v is None else v, reverse=True)
    ]
    return EvaluatorCalibration(
        name=name, bucket=bucket, versions=versions, counts=every, overall=calibration_of(every)
    )


# --- the pairs counted by the database --------------------------------------------------------


def _version(value: object) -> int | None:
    """A result's recorded version (a whole number in its metadata), as the pairs read it."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def calibration_cells(
    *,
    project: Project | None,
    name: str,
    bucket: Bucket = "day",
    start: datetime | None = None,
    end: datetime | None = None,
) -> Cells:
    """What ``pair_cells(calibration_pairs(...))`` counts, counted by the database: the
    agreement page's pairing (``PAIRING_RULE``) as four grouped joins — a person's label and
    an evaluator's label on the same span, trace or session, and a trace's label with the
    evaluator's root-span label where the evaluator has no result on the trace itself — each
    returning one row per version, bucket and pair of labels, whatever the number of items.
    ``tests/evalhub/calibration/test_selectors.py`` checks both count the same."""
    if bucket not in BUCKETS:
        raise ValueError(f"bucket must be one of {', '.join(BUCKETS)}")
    rated = Q(label__isnull=False) | Q(score__isnull=False)
    machine = Annotation.objects.filter(
        name=name, annotator_kind__in=MACHINE_KINDS, label__isnull=False
    )
    if project is not None:
        machine = machine.filter(project=project)
    item_time = Coalesce(F("span__start_time"), F("trace__start_time"), F("session__start_time"))
    machine = machine.annotate(item_time=item_time)
    if start is not None:
        machine = machine.filter(item_time__gte=start)
    if end is not None:
        machine = machine.filter(item_time__lt=end)

    def people(path: str) -> dict[str, Any]:
        return {
            f"{path}__annotations__annotator_kind": AnnotatorKind.HUMAN,
            f"{path}__annotations__name": name,
            f"{path}__annotations__label__isnull": False,
        }

    on_trace_itself = Annotation.objects.filter(
        rated,
        trace=OuterRef("span__trace"),
        name=name,
        annotator_kind=OuterRef("annotator_kind"),
        identifier=OuterRef("identifier"),
    )
    joins = [
        (machine.filter(target_kind=TargetKind.SPAN, **people("span")), "span"),
        (machine.filter(target_kind=TargetKind.TRACE, **people("trace")), "trace"),
        (machine.filter(target_kind=TargetKind.SESSION, **people("session")), "session"),
        (
            machine.filter(
                ~Exists(on_trace_itself),
                target_kind=TargetKind.SPAN,
                span__parent_id__isnull=True,
                **people("span__trace"),
            ),
            "span__trace",
        ),
    ]
    cells: Cells = Counter()
    trunc = {"hour": TruncHour, "day": TruncDay, "week": TruncWeek}[bucket]
    for query, path in joins:
        rows = (
            query.annotate(
                version=KeyTransform("version", "metadata"),
                slot=trunc("item_time", tzinfo=UTC),
                human=F(f"{path}__annotations__label"),
            )
            .values_list("version", "slot", "human", "label")
            .annotate(n=Count("id"))
            .order_by()
        )
        for version, slot, human, judge, n in rows:
            moment = slot.astimezone(UTC) if slot is not None else None
            cells[(_version(version), moment, human, judge)] += n
    return cells


def evaluator_calibration(
    *,
    project: Project | None,
    name: str,
    bucket: Bucket = "day",
    start: datetime | None = None,
    end: datetime | None = None,
) -> EvaluatorCalibration:
    """The calibration of the evaluator whose results are named ``name`` (in ``project``;
    every project for None): four grouped queries (``calibration_cells``)."""
    cells = calibration_cells(project=project, name=name, bucket=bucket, start=start, end=end)
    return calibration_from_cells(cells, name=name, bucket=bucket)


# --- rows for data frames ------------------------------------------------------------------


def _interval(value: Any) -> tuple[float | None, float | None]:
    return (value.low, value.high) if value is not None else (None, None)


def calibration_rows(calibration: EvaluatorCalibration) -> list[dict[str, Any]]:
    """One flat row per version and bucket (``bucket_start`` None: the version over the whole
    range): what the SDK turns into a DataFrame."""
    rows = []
    for version in calibration.versions:
        entries = [(None, version.overall)] + [(b.start, b.calibration) for b in version.buckets]
        for moment, metrics in entries:
            accuracy_low, accuracy_high = _interval(metrics.accuracy_ci)
            kappa_low, kappa_high = _interval(metrics.kappa_ci)
            rows.append(
                {
                    "evaluator": calibration.name,
                    "version": version.version,
                    "bucket_start": moment,
                    "pairs": metrics.pairs,
                    "accuracy": metrics.accuracy,
                    "accuracy_low": accuracy_low,
                    "accuracy_high": accuracy_high,
                    "kappa": metrics.kappa,
                    "kappa_low": kappa_low,
                    "kappa_high": kappa_high,
                }
            )
    return rows


def calibration_label_rows(calibration: EvaluatorCalibration) -> list[dict[str, Any]]:
    """One flat row per version, bucket and label: precision and recall with intervals."""
    rows = []
    for version in calibration.versions:
        entries = [(None, version.overall)] + [(b.start, b.calibration) for b in version.buckets]
        for moment, metrics in entries:
            for label in metrics.per_label:
                precision_low, precision_high = _interval(label.precision_ci)
                recall_low, recall_high = _interval(label.recall_ci)
                rows.append(
                    {
                        "evaluator": calibration.name,
                        "version": version.version,
                        "bucket_start": moment,
                        "label": label.label,
                        "support": label.support,
                        "predicted": label.predicted,
                        "precision": label.precision,
                        "precision_low": precision_low,
                        "precision_high": precision_high,
                        "recall": label.recall,
                        "recall_low": recall_low,
                        "recall_high": recall_high,
                    }
                )
    return rows


__all__ = [
    "CalibrationBucket",
    "CalibrationPair",
    "EvaluatorCalibration",
    "VersionCalibration",
    "calibration_cells",
    "calibration_from_cells",
    "calibration_label_rows",
    "calibration_pairs",
    "calibration_rows",
    "calibration_summarize",
    "evaluator_calibration",
    "pair_cells",
]
