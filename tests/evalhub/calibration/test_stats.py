"""Calibration statistics against hand-computed values and an independent bootstrap."""

from __future__ import annotations

import math
import random
from collections import Counter

import pytest

from annotations.agreement import cohen_kappa
from evalhub.calibration.stats import (
    calibration_of,
    confusion_counts,
    kappa_with_se,
    rogan_gladen,
    wilson,
)

# 50 items: both "yes" 20, person yes / judge no 5, person no / judge yes 10, both "no" 15.
TEXTBOOK = [("yes", "yes")] * 20 + [("yes", "no")] * 5 + [("no", "yes")] * 10 + [("no", "no")] * 15


def test_wilson_against_published_values():
    # 5 of 10: 0.2366 to 0.7634; 0 of 10: 0 to 0.2775 (Wilson 1927, z = 1.96).
    half = wilson(5, 10)
    assert (half.low, half.high) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    none = wilson(0, 10)
    assert (none.low, none.high) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson(0, 0) is None


def test_the_matrix_and_every_metric_of_the_textbook_table():
    metrics = calibration_of(confusion_counts(TEXTBOOK))
    assert metrics.pairs == 50 and metrics.correct == 35
    assert metrics.labels == ["yes", "no"]  # people said yes 25 times, no 25: judge's yes 30
    assert metrics.matrix == [[20, 5], [10, 15]]
    assert metrics.accuracy == pytest.approx(0.7)
    assert metrics.kappa == pytest.approx(0.4)  # as the agreement page computes it
    assert metrics.kappa == pytest.approx(cohen_kappa(TEXTBOOK))
    assert metrics.kappa_ci.low < 0.4 < metrics.kappa_ci.high
    yes, no = metrics.per_label
    assert (yes.label, yes.support, yes.predicted) == ("yes", 25, 30)
    assert yes.precision == pytest.approx(20 / 30) and yes.recall == pytest.approx(20 / 25)
    assert no.precision == pytest.approx(15 / 20) and no.recall == pytest.approx(15 / 25)
    assert yes.recall_ci == wilson(20, 25)


def test_the_kappa_standard_error_matches_a_bootstrap():
    # Resample the 200 pairs of a 3 x 3 table 3000 times; the spread of kappa is what the
    # Fleiss-Cohen-Everitt formula estimates without resampling.
    cells = {("a", "a"): 60, ("a", "b"): 10, ("a", "c"): 5, ("b", "a"): 12, ("b", "b"): 50}
    cells |= {("b", "c"): 8, ("c", "a"): 4, ("c", "b"): 11, ("c", "c"): 40}
    pairs = [cell for cell, count in cells.items() for _ in range(count)]
    kappa, se = kappa_with_se(Counter(pairs))
    rng = random.Random(7)
    kappas = [cohen_kappa(rng.choices(pairs, k=len(pairs))) for _ in range(3000)]
    mean = sum(kappas) / len(kappas)
    spread = math.sqrt(sum((k - mean) ** 2 for k in kappas) / (len(kappas) - 1))
    assert kappa == pytest.approx(cohen_kappa(pairs))
    assert se == pytest.approx(spread, rel=0.08)


def test_kappa_is_undefined_when_both_sides_use_one_label():
    metrics = calibration_of(Counter({("x", "x"): 4}))
    assert metrics.kappa is None and metrics.kappa_ci is None
    assert metrics.accuracy == 1.0
    assert calibration_of(Counter()).accuracy is None


def test_rogan_gladen_against_a_hand_computed_rate():
    # Against people: 100 "fail" items, judge says fail on 90 (Se 0.9); 100 "pass" items,
    # judge says fail on 20 (Sp 0.8). The judge gives fail to 300 of 1000 live items:
    # (0.3 + 0.8 - 1) / (0.9 + 0.8 - 1) = 0.1 / 0.7.
    counts = Counter(
        {("fail", "fail"): 90, ("fail", "pass"): 10, ("pass", "fail"): 20, ("pass", "pass"): 80}
    )
    rate = rogan_gladen(label="fail", positives=300, n=1000, counts=counts)
    assert rate.raw == pytest.approx(0.3)
    assert (rate.sensitivity, rate.specificity) == pytest.approx((0.9, 0.8))
    assert rate.corrected == pytest.approx(0.1 / 0.7)
    assert rate.corrected_ci.low < rate.corrected < rate.corrected_ci.high
    # The interval carries the calibration's uncertainty: wider than the raw rate's.
    assert rate.corrected_ci.high - rate.corrected_ci.low > rate.raw_ci.high - rate.raw_ci.low
    assert rate.calibration_pairs == 200


def test_rogan_gladen_is_left_out_when_the_judge_does_not_separate_the_label():
    coin = Counter({("fail", "fail"): 5, ("fail", "pass"): 5, ("pass", "fail"): 5})
    coin[("pass", "pass")] = 5
    assert rogan_gladen(label="fail", positives=3, n=10, counts=coin).corrected is None
    only_fail = Counter({("fail", "fail"): 3})
    assert rogan_gladen(label="fail", positives=3, n=10, counts=only_fail).corrected is None


def test_a_corrected_rate_stays_a_proportion():
    counts = Counter({("fail", "fail"): 9, ("fail", "pass"): 1, ("pass", "pass"): 8})
    counts[("pass", "fail")] = 2
    low = rogan_gladen(label="fail", positives=0, n=50, counts=counts)
    assert low.corrected == 0.0 and low.corrected_ci.low == 0.0
