"""Fixed-horizon tests, for reports at the end of an experiment (never for decisions).

These are valid only when looked at once, at a sample size fixed in advance; checked
after every batch they fire far more often than α (see ``novacron bench experiments``,
``naive_fpr``). They are here for the final report and for the sample sizes that set the
length of a canary step. Where scipy has the test it does the work.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

__all__ = [
    "TestResult",
    "chi_square",
    "mann_whitney",
    "sample_size",
    "two_proportion_z",
    "welch_t",
    "welch_t_from_stats",
]


@dataclass(frozen=True, slots=True)
class TestResult:
    """A test statistic and its two-sided p-value."""

    name: str
    statistic: float
    p_value: float

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {"test": self.name, "statistic": self.statistic, "p_value": self.p_value}


def two_proportion_z(x_a: Any, n_a: Any, x_b: Any, n_b: Any) -> tuple[Any, Any]:
    """Pooled two-proportion z statistic and two-sided p-value (vectorised; p = 1 without data)."""
    xa, na, xb, nb = (np.asarray(v, dtype=float) for v in (x_a, n_a, x_b, n_b))
    with np.errstate(divide="ignore", invalid="ignore"):
        pooled = (xa + xb) / (na + nb)
        se = np.sqrt(pooled * (1 - pooled) * (1 / na + 1 / nb))
        z = np.where(se > 0, (xb / nb - xa / na) / se, 0.0)
    z = np.nan_to_num(z)
    return z, 2 * stats.norm.sf(np.abs(z))


def chi_square(x_a: int, n_a: int, x_b: int, n_b: int) -> TestResult:
    """Pearson's chi-square on the 2×2 table (no continuity correction)."""
    table = np.array([[x_a, n_a - x_a], [x_b, n_b - x_b]], dtype=float)
    if (table.sum(axis=0) == 0).any() or (table.sum(axis=1) == 0).any():
        return TestResult("chi_square", 0.0, 1.0)
    chi2, p, _, _ = stats.chi2_contingency(table, correction=False)
    return TestResult("chi_square", float(chi2), float(p))


def welch_t(a: Any, b: Any) -> TestResult:
    """Welch's unequal-variance t-test of B against A."""
    if len(a) < 2 or len(b) < 2:
        return TestResult("welch_t", 0.0, 1.0)
    t, p = stats.ttest_ind(np.asarray(b, dtype=float), np.asarray(a, dtype=float), equal_var=False)
    return TestResult("welch_t", float(np.nan_to_num(t)), float(np.nan_to_num(p, nan=1.0)))


def welch_t_from_stats(mean_a: float, var_a: float, n_a: int, mean_b: float, var_b: float, n_b: int) -> TestResult:
    """Welch's t-test of B against A from each arm's mean, variance and count (what a tally keeps)."""
    if n_a < 2 or n_b < 2 or (var_a == 0 and var_b == 0):
        return TestResult("welch_t", 0.0, 1.0)
    t, p = stats.ttest_ind_from_stats(mean_b, var_b**0.5, n_b, mean_a, var_a**0.5, n_a, equal_var=False)
    return TestResult("welch_t", float(np.nan_to_num(t)), float(np.nan_to_num(p, nan=1.0)))


def mann_whitney(a: Any, b: Any) -> TestResult:
    """Mann-Whitney U of B against A (two-sided)."""
    if len(a) == 0 or len(b) == 0:
        return TestResult("mann_whitney", 0.0, 1.0)
    u, p = stats.mannwhitneyu(np.asarray(b, dtype=float), np.asarray(a, dtype=float), alternative="two-sided")
    return TestResult("mann_whitney", float(u), float(p))


def sample_size(var_a: float, var_b: float, delta: float, *, alpha: float, power: float, ratio: float = 1.0) -> int:
    """Observations of arm B a fixed-horizon z-test needs to detect ``delta`` (two-sided).

    ``ratio`` is n_A / n_B (a 10 % canary beside 90 % baseline has ratio 9); arm A then
    needs ``ratio`` times as many.
    """
    if delta == 0:
        raise ValueError("delta must be non-zero")
    if not (0 < alpha < 1 and 0 < power < 1 and ratio > 0):
        raise ValueError("alpha and power must lie in (0, 1), ratio must be positive")
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    return max(2, math.ceil(float(z * z * (var_a / ratio + var_b) / (delta * delta))))
