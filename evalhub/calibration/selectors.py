"""Live calibration: how each evaluator version agrees with people, over time.

The pairs are the agreement page's (``annotations.selectors.agreement_ratings`` and
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

from annotations.agreement import PAIRING_RULE, rating_pairs
from annotations.selectors import agreement_ratings
from evalhub.calibration.stats import (
    Calibration,
    CorrectedRate,
    calibration_of,
    rogan_gladen,
)
from evalhub.online.trends import BUCKET_LENGTH, BUCKETS, Bucket, Trend
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


def calibration_summarize(
    pairs: list[CalibrationPair],
    *,
    name: str,
    bucket: Bucket = "day",
    start: datetime | None = None,
    end: datetime | None = None,
) -> EvaluatorCalibration:
    """Group ``pairs`` by version and ``bucket`` (UTC) of items started in ``[start, end)``
    (either end open; pairs without a time count in the versions' totals only when the range
    is open) and compute every metric."""
    if bucket not in BUCKETS:
        raise ValueError(f"bucket must be one of {', '.join(BUCKETS)}")
    step = int(BUCKET_LENGTH[bucket].total_seconds())
    # Buckets as whole seconds since the epoch, as TruncHour/Day/Week count them in UTC: the
    # epoch was a Thursday, weeks start on Monday.
    offset = 4 * 86400 if bucket == "week" else 0
    bounded = start is not None or end is not None
    low = start.timestamp() if start is not None else None
    high = end.timestamp() if end is not None else None
    cells: Counter[tuple[int | None, int | None, str, str]] = Counter()
    for pair in pairs:  # the one pass over the pairs: everything after works on counts
        when = pair.when
        if when is None:
            if not bounded:
                cells[(pair.version, None, pair.human, pair.judge)] += 1
            continue
        moment = when.timestamp()
        if (low is not None and moment < low) or (high is not None and moment >= high):
            continue
        slot = int((moment - offset) // step) * step + offset
        cells[(pair.version, slot, pair.human, pair.judge)] += 1
    per_version: dict[int | None, Counter[tuple[str, str]]] = {}
    per_bucket: dict[int | None, dict[int, Counter[tuple[str, str]]]] = {}
    every: Counter[tuple[str, str]] = Counter()
    for (version, slot, human, judge), count in cells.items():
        per_version.setdefault(version, Counter())[(human, judge)] += count
        every[(human, judge)] += count
        if slot is not None:
            by_slot = per_bucket.setdefault(version, {})
            by_slot.setdefault(slot, Counter())[(human, judge)] += count
    versions = [
        VersionCalibration(
            version=version,
            overall=calibration_of(per_version[version]),
            buckets=[
                CalibrationBucket(datetime.fromtimestamp(slot, UTC), calibration_of(counts))
                for slot, counts in sorted(per_bucket.get(version, {}).items())
            ],
        )
        for version in sorted(per_version, key=lambda v: -1 if v is None else v, reverse=True)
    ]
    return EvaluatorCalibration(
        name=name, bucket=bucket, versions=versions, counts=every, overall=calibration_of(every)
    )


def evaluator_calibration(
    *,
    project: Project | None,
    name: str,
    bucket: Bucket = "day",
    start: datetime | None = None,
    end: datetime | None = None,
) -> EvaluatorCalibration:
    """The calibration of the evaluator whose results are named ``name``: one query for the
    people's labels, one for the evaluator's results on their items."""
    return calibration_summarize(
        calibration_pairs(project=project, name=name),
        name=name,
        bucket=bucket,
        start=start,
        end=end,
    )


@dataclass(slots=True)
class TrendCalibration:
    """What Score trends show beside an evaluation's chart: its agreement with people, and
    each label's rate corrected for the judge's error, over the range and per bucket."""

    calibration: EvaluatorCalibration
    rates: list[CorrectedRate]
    bucket_rates: list[tuple[datetime, list[CorrectedRate]]]


def trend_calibration(*, trend: Trend, calibration: EvaluatorCalibration) -> TrendCalibration:
    """Raw and Rogan-Gladen-corrected label rates of ``trend``, the judge's error measured on
    every calibration pair of the evaluation (all versions, all time: the most pairs)."""
    labels = [label for label in trend.labels if label is not None]
    labelled = sum(n for label, n in _totals(trend).items() if label is not None)
    rates = [
        rogan_gladen(
            label=label,
            positives=_totals(trend).get(label, 0),
            n=labelled,
            counts=calibration.counts,
        )
        for label in labels
    ]
    bucket_rates = []
    for bucket in trend.buckets:
        n = sum(count for label, count in bucket.counts.items() if label is not None)
        bucket_rates.append(
            (
                bucket.start,
                [
                    rogan_gladen(
                        label=label,
                        positives=bucket.counts.get(label, 0),
                        n=n,
                        counts=calibration.counts,
                    )
                    for label in labels
                ],
            )
        )
    return TrendCalibration(calibration=calibration, rates=rates, bucket_rates=bucket_rates)


def _totals(trend: Trend) -> dict[str | None, int]:
    totals: dict[str | None, int] = {}
    for bucket in trend.buckets:
        for label, count in bucket.counts.items():
            totals[label] = totals.get(label, 0) + count
    return totals


def trends_calibration(*, project: Project, trends: list[Trend]) -> dict[str, TrendCalibration]:
    """Calibration for each evaluation trend (not people's) that has calibration pairs, by
    name. Two queries per evaluation shown."""
    found: dict[str, TrendCalibration] = {}
    for trend in trends:
        if trend.human or trend.name in found:
            continue
        calibration = evaluator_calibration(project=project, name=trend.name)
        if calibration.pairs:
            found[trend.name] = trend_calibration(trend=trend, calibration=calibration)
    return found


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
    "TrendCalibration",
    "VersionCalibration",
    "calibration_label_rows",
    "calibration_pairs",
    "calibration_rows",
    "calibration_summarize",
    "evaluator_calibration",
    "trend_calibration",
    "trends_calibration",
]
