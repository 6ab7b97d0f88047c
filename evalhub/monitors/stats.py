"""The tests a baseline condition uses: two proportions (z-test) and two means (Welch's t-test).

One-sided: ``direction="above"`` asks whether the current window is higher than the baseline,
``"below"`` whether it is lower. Pure functions over counts and moments, so the database does
the counting and these stay exact and cheap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

Side = Literal["above", "below"]


@dataclass(frozen=True, slots=True)
class TestResult:
    effect: float  # current - baseline
    statistic: float
    p_value: float


def normal_sf(z: float) -> float:
    """P(Z > z) for a standard normal Z."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-12:
            break
    return h


def incomplete_beta(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def student_t_sf(t: float, df: float) -> float:
    """P(T > t) for Student's t with ``df`` degrees of freedom."""
    tail = 0.5 * incomplete_beta(df / 2.0, 0.5, df / (df + t * t))
    return tail if t > 0 else 1.0 - tail


def two_proportion_test(
    hits: int, total: int, base_hits: int, base_total: int, *, side: Side
) -> TestResult:
    """Is the share ``hits/total`` above (below) ``base_hits/base_total``? Pooled z-test."""
    p1, p0 = hits / total, base_hits / base_total
    pooled = (hits + base_hits) / (total + base_total)
    se = math.sqrt(pooled * (1.0 - pooled) * (1.0 / total + 1.0 / base_total))
    effect = p1 - p0
    z = (0.0 if effect == 0 else math.copysign(math.inf, effect)) if se == 0.0 else effect / se
    p = normal_sf(z) if side == "above" else normal_sf(-z)
    return TestResult(effect=effect, statistic=z, p_value=p)


def welch_t_test(
    mean: float,
    var: float,
    n: int,
    base_mean: float,
    base_var: float,
    base_n: int,
    *,
    side: Side,
) -> TestResult:
    """Is ``mean`` above (below) ``base_mean``? Welch's t-test on sample means and variances."""
    effect = mean - base_mean
    a, b = var / n, base_var / base_n
    se = math.sqrt(a + b)
    if se == 0.0:
        t = 0.0 if effect == 0 else math.copysign(math.inf, effect)
        p = (0.0 if (t > 0) == (side == "above") else 1.0) if t != 0 else 0.5
        return TestResult(effect=effect, statistic=t, p_value=p)
    t = effect / se
    denominator = (a * a) / (n - 1) + (b * b) / (base_n - 1)
    df = (a + b) ** 2 / denominator if denominator > 0 else float(n + base_n - 2)
    p = student_t_sf(t, df) if side == "above" else student_t_sf(-t, df)
    return TestResult(effect=effect, statistic=t, p_value=p)


__all__ = [
    "TestResult",
    "incomplete_beta",
    "normal_sf",
    "student_t_sf",
    "two_proportion_test",
    "welch_t_test",
]
