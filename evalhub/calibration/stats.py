"""The statistics of live calibration, on a confusion matrix (people's labels x the judge's).

Pure functions on counts, no queries: a matrix of 100,000 pairs is built in one pass and every
metric is then computed from its cells, so the cost is the pass, not the metrics.

- **Accuracy, precision, recall** with Wilson score intervals (a proportion's interval that
  stays inside [0, 1] and behaves with few pairs).
- **Cohen's kappa** with the large-sample standard error of Fleiss, Cohen & Everitt (1969),
  computed from the matrix; the interval is kappa ± z·se, clipped to [-1, 1].
- **Rogan-Gladen**: the rate of a label corrected for the judge's measured error — the observed
  rate ``q``, the judge's sensitivity ``Se`` and specificity ``Sp`` on that label against
  people give ``(q + Sp - 1) / (Se + Sp - 1)``; its interval comes from the delta method over
  the three estimated proportions (Greenland 1996), clipped to [0, 1].
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

Z95: Final = 1.959963984540054  # the two-sided 95 % normal quantile


@dataclass(frozen=True, slots=True)
class Interval:
    low: float
    high: float


def wilson(successes: int, n: int, *, z: float = Z95) -> Interval | None:
    """The Wilson score interval of ``successes`` out of ``n``; None without trials."""
    if n <= 0:
        return None
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return Interval(max(0.0, centre - half), min(1.0, centre + half))


Counts = Mapping[tuple[str, str], int]  # (person's label, judge's label) → pairs


def confusion_counts(pairs: Iterable[tuple[str, str]]) -> Counter[tuple[str, str]]:
    """(person's label, judge's label) → how many pairs: one pass over the pairs."""
    return Counter(pairs)


def kappa_with_se(counts: Counts) -> tuple[float | None, float | None]:
    """Cohen's kappa of the matrix and its large-sample standard error (Fleiss, Cohen &
    Everitt 1969); ``(None, None)`` without pairs or when chance agreement is certain."""
    n = sum(counts.values())
    if n <= 0:
        return None, None
    rows: Counter[str] = Counter()
    cols: Counter[str] = Counter()
    for (a, b), count in counts.items():
        rows[a] += count
        cols[b] += count
    p_o = sum(count for (a, b), count in counts.items() if a == b) / n
    p_e = sum(rows[label] * cols[label] for label in rows) / (n * n)
    if math.isclose(p_e, 1.0):
        return None, None
    kappa = (p_o - p_e) / (1 - p_e)
    pr = {label: rows[label] / n for label in rows | cols}
    pc = {label: cols[label] / n for label in rows | cols}
    a_term = 0.0
    b_term = 0.0
    for (a, b), count in counts.items():
        p = count / n
        if a == b:
            a_term += p * (1 - (pr[a] + pc[a]) * (1 - kappa)) ** 2
        else:
            b_term += p * (pc[a] + pr[b]) ** 2
    b_term *= (1 - kappa) ** 2
    c_term = (kappa - p_e * (1 - kappa)) ** 2
    variance = max(0.0, a_term + b_term - c_term) / (n * (1 - p_e) ** 2)
    return kappa, math.sqrt(variance)


@dataclass(frozen=True, slots=True)
class LabelMetrics:
    """One label: ``support`` pairs where people gave it, ``predicted`` where the judge did."""

    label: str
    support: int
    predicted: int
    correct: int
    precision: float | None
    precision_ci: Interval | None
    recall: float | None
    recall_ci: Interval | None


@dataclass(frozen=True, slots=True)
class Calibration:
    """A judge against people over ``pairs`` paired items. ``matrix[i][j]`` counts the items
    people labelled ``labels[i]`` and the judge ``labels[j]``."""

    pairs: int
    labels: list[str]
    matrix: list[list[int]]
    correct: int
    accuracy: float | None
    accuracy_ci: Interval | None
    kappa: float | None
    kappa_se: float | None
    kappa_ci: Interval | None
    per_label: list[LabelMetrics] = field(default_factory=list)


def calibration_of(counts: Counts, *, z: float = Z95) -> Calibration:
    """Every metric of a confusion matrix; labels in order of how often people gave them."""
    n = sum(counts.values())
    rows: Counter[str] = Counter()
    cols: Counter[str] = Counter()
    diagonal: Counter[str] = Counter()
    for (a, b), count in counts.items():
        rows[a] += count
        cols[b] += count
        if a == b:
            diagonal[a] += count
    labels = sorted(rows | cols, key=lambda label: (-rows[label], -cols[label], label))
    matrix = [[counts.get((a, b), 0) for b in labels] for a in labels]
    correct = sum(diagonal.values())
    kappa, se = kappa_with_se(counts)
    kappa_ci = (
        Interval(max(-1.0, kappa - z * se), min(1.0, kappa + z * se))
        if kappa is not None and se is not None
        else None
    )
    per_label = [
        LabelMetrics(
            label=label,
            support=rows[label],
            predicted=cols[label],
            correct=diagonal[label],
            precision=diagonal[label] / cols[label] if cols[label] else None,
            precision_ci=wilson(diagonal[label], cols[label], z=z),
            recall=diagonal[label] / rows[label] if rows[label] else None,
            recall_ci=wilson(diagonal[label], rows[label], z=z),
        )
        for label in labels
    ]
    return Calibration(
        pairs=n,
        labels=labels,
        matrix=matrix,
        correct=correct,
        accuracy=correct / n if n else None,
        accuracy_ci=wilson(correct, n, z=z),
        kappa=kappa,
        kappa_se=se,
        kappa_ci=kappa_ci,
        per_label=per_label,
    )


@dataclass(frozen=True, slots=True)
class CorrectedRate:
    """A label's rate as the judge gave it (``raw`` of ``n`` results) and corrected for the
    judge's error against people (``corrected``, with its interval): None where the judge
    does not separate the label from the rest (``Se + Sp <= 1``) or calibration lacks either
    side of it."""

    label: str
    n: int
    raw: float
    raw_ci: Interval | None
    sensitivity: float | None
    specificity: float | None
    corrected: float | None
    corrected_ci: Interval | None
    calibration_pairs: int


def rogan_gladen(
    *, label: str, positives: int, n: int, counts: Counts, z: float = Z95
) -> CorrectedRate:
    """The Rogan-Gladen estimate of the true rate of ``label`` among ``n`` judged items of
    which the judge gave it to ``positives``, with the judge's sensitivity and specificity for
    that label (against the rest) measured on ``counts`` (people x judge)."""
    raw = positives / n if n else 0.0
    tp = fn = fp = tn = 0
    for (a, b), count in counts.items():
        if a == label:
            if b == label:
                tp += count
            else:
                fn += count
        elif b == label:
            fp += count
        else:
            tn += count
    pairs = tp + fn + fp + tn
    se = tp / (tp + fn) if tp + fn else None
    sp = tn / (tn + fp) if tn + fp else None
    corrected = interval = None
    if n and se is not None and sp is not None and se + sp - 1 > 1e-9:
        youden = se + sp - 1
        estimate = (raw + sp - 1) / youden
        variance = (
            raw * (1 - raw) / n
            + estimate**2 * se * (1 - se) / (tp + fn)
            + (1 - estimate) ** 2 * sp * (1 - sp) / (tn + fp)
        ) / youden**2
        half = z * math.sqrt(max(variance, 0.0))
        corrected = min(1.0, max(0.0, estimate))
        interval = Interval(max(0.0, estimate - half), min(1.0, estimate + half))
    return CorrectedRate(
        label=label,
        n=n,
        raw=raw,
        raw_ci=wilson(positives, n, z=z),
        sensitivity=se,
        specificity=sp,
        corrected=corrected,
        corrected_ci=interval,
        calibration_pairs=pairs,
    )


__all__ = [
    "Z95",
    "Calibration",
    "CorrectedRate",
    "Interval",
    "LabelMetrics",
    "calibration_of",
    "confusion_counts",
    "kappa_with_se",
    "rogan_gladen",
    "wilson",
]
