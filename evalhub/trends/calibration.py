"""Score trends beside calibration: an evaluation's agreement with people and its label rates
corrected for the judge's measured error (Rogan-Gladen), for the Score trends cards."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from evalhub.calibration.selectors import EvaluatorCalibration, evaluator_calibration
from evalhub.calibration.stats import CorrectedRate, rogan_gladen
from evalhub.trends.selectors import Trend
from tracing.models import Project


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
    name. Four queries per evaluation shown."""
    found: dict[str, TrendCalibration] = {}
    for trend in trends:
        if trend.human or trend.name in found:
            continue
        calibration = evaluator_calibration(project=project, name=trend.name)
        if calibration.pairs:
            found[trend.name] = trend_calibration(trend=trend, calibration=calibration)
    return found
