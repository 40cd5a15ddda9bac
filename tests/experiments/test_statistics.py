"""The statistics against scipy, closed forms and known cases; the A/A property on seeded simulations."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

from novacron.benchmarks.experiments_stats import aa, power_errors
from novacron.experiments import ArmStats, CanaryPolicy, msprt, srm_check
from novacron.experiments.fixed import (
    chi_square,
    mann_whitney,
    sample_size,
    two_proportion_z,
    welch_t,
    welch_t_from_stats,
)
from novacron.experiments.sequential import confidence_radius, log_mixture_ratio, tau_grid


def test_arm_stats_mean_and_variance_match_numpy() -> None:
    values = [0.1, 0.4, 0.35, 0.9, 0.2]
    arm = ArmStats.of(values[:2]) + ArmStats.of(values[2:])
    assert arm.n == 5
    assert arm.mean == pytest.approx(np.mean(values))
    assert arm.variance == pytest.approx(np.var(values, ddof=1))
    assert ArmStats().mean == 0.0
    assert ArmStats.of([1.0]).variance == 0.0
    with pytest.raises(ValueError, match="successes"):
        ArmStats.bernoulli(5, 3)


def test_two_proportion_z_squared_is_the_uncorrected_chi_square() -> None:
    z, p = two_proportion_z(30, 1000, 52, 1000)
    chi = chi_square(30, 1000, 52, 1000)
    ref_chi, ref_p, _, _ = stats.chi2_contingency([[30, 970], [52, 948]], correction=False)
    assert float(z) ** 2 == pytest.approx(ref_chi)
    assert float(p) == pytest.approx(ref_p)
    assert chi.statistic == pytest.approx(ref_chi)
    assert chi.p_value == pytest.approx(ref_p)
    assert float(z) > 0  # B has more errors


def test_chi_square_without_any_error_has_no_evidence() -> None:
    assert chi_square(0, 100, 0, 100).p_value == 1.0


def test_welch_t_matches_the_textbook_formula() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(10, 1, 40), rng.normal(10.6, 2, 25)
    res = welch_t(a, b)
    se = math.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
    assert res.statistic == pytest.approx((b.mean() - a.mean()) / se)
    nu = se**4 / ((a.var(ddof=1) / len(a)) ** 2 / (len(a) - 1) + (b.var(ddof=1) / len(b)) ** 2 / (len(b) - 1))
    assert res.p_value == pytest.approx(2 * stats.t.sf(abs(res.statistic), nu))
    assert welch_t([1.0], [2.0, 3.0]).p_value == 1.0


def test_mann_whitney_counts_pairs_where_b_is_larger() -> None:
    res = mann_whitney([1.0, 2.0, 3.0], [4.0, 5.0])
    assert res.statistic == 6.0  # every one of the 2×3 pairs
    assert res.p_value == pytest.approx(0.2)
    assert mann_whitney([], [1.0]).p_value == 1.0


def test_sample_size_is_the_classic_formula_and_grows_for_a_small_canary() -> None:
    n = sample_size(0.05 * 0.95, 0.055 * 0.945, 0.005, alpha=0.05, power=0.8)
    z = stats.norm.ppf(0.975) + stats.norm.ppf(0.8)
    assert n == math.ceil(z * z * (0.05 * 0.95 + 0.055 * 0.945) / 0.005**2)
    assert sample_size(0.1, 0.1, 0.05, alpha=0.05, power=0.8, ratio=9) < n
    with pytest.raises(ValueError, match="delta"):
        sample_size(0.1, 0.1, 0.0, alpha=0.05, power=0.8)


def test_one_scale_mixture_ratio_is_the_closed_form() -> None:
    d, s2, tau = 0.01, 2e-5, 0.005
    expected = 0.5 * math.log(s2 / (s2 + tau**2)) + tau**2 * d * d / (2 * s2 * (s2 + tau**2))
    assert float(log_mixture_ratio(d, s2, (tau,))) == pytest.approx(expected)
    # an equal-weight average over scales
    two = float(log_mixture_ratio(d, s2, (tau, 4 * tau)))
    singles = [float(log_mixture_ratio(d, s2, (t,))) for t in (tau, 4 * tau)]
    assert two == pytest.approx(math.log((math.exp(singles[0]) + math.exp(singles[1])) / 2))
    with pytest.raises(ValueError, match="taus"):
        log_mixture_ratio(d, s2, ())


def test_confidence_radius_sits_where_the_test_starts_to_reject() -> None:
    taus = tau_grid(0.005)
    r = confidence_radius(1e-5, taus, 0.05)
    assert float(log_mixture_ratio(r * 1.001, 1e-5, taus)) > math.log(20)
    assert float(log_mixture_ratio(r * 0.999, 1e-5, taus)) < math.log(20)


def test_msprt_rejects_a_clear_regression_and_reports_an_interval_that_holds_it() -> None:
    res = msprt(0.01, 0.0099, 5000, 0.05, 0.0475, 5000, taus=tau_grid(0.001), alpha=0.05)
    assert res.significant
    assert res.diff == pytest.approx(0.04)
    assert res.ci[0] > 0
    assert res.ci[0] < 0.04 < res.ci[1]
    assert res.p_value < 0.05
    # a JSON boolean (a numpy bool reached `experiment status --json` as the string "False")
    assert json.loads(json.dumps(res.to_json()))["significant"] is True
    empty = msprt(0.0, 0.0, 0, 0.5, 0.25, 10, taus=(0.1,), alpha=0.05)
    assert not empty.significant
    assert empty.p_value == 1.0


def test_tau_grid_is_geometric_and_bounded() -> None:
    assert tau_grid(0.01, 0.5) == pytest.approx((0.01, 0.04, 0.16))
    with pytest.raises(ValueError, match="smallest"):
        tau_grid(0.0)


def test_always_valid_test_keeps_false_positives_under_alpha_with_a_hundred_looks() -> None:
    res = aa(n_exp=500, looks=100, batch=100, p=0.05, policy=CanaryPolicy(base_rate=0.05), seed=7)
    assert res["fpr"] <= 0.05
    assert res["fpr_ci"][0] <= res["fpr"] <= res["fpr_ci"][1]
    assert res["naive_fpr"] > 0.15  # peeking at a fixed-horizon test fires far more often


def test_always_valid_test_finds_a_ten_percent_error_increase() -> None:
    res = power_errors(n_exp=100, p=0.05, lift=0.1, policy=CanaryPolicy(base_rate=0.05), horizon=3.0, looks=60, seed=3)
    assert res["power"] >= 0.8
    assert res["median_samples_per_arm"] < res["horizon_per_arm"]


def test_srm_check_flags_a_broken_split() -> None:
    assert not srm_check([5020, 4980], [50, 50]).mismatch
    broken = srm_check([6000, 4000], [50, 50])
    assert broken.mismatch
    assert broken.p_value < 1e-6
    assert srm_check([900, 100], [90, 10]).mismatch is False
    assert srm_check([10, 1], [100, 0]).mismatch  # traffic where none was routed
    assert not srm_check([30, 10], [50, 50]).mismatch  # too few requests for a verdict
    with pytest.raises(ValueError, match="same"):
        srm_check([1, 2], [1.0])


def test_welch_from_stats_agrees_with_welch_on_samples() -> None:
    rng = np.random.default_rng(4)
    a, b = rng.normal(1.0, 0.2, 50), rng.normal(1.1, 0.3, 30)
    ref = welch_t(a, b)
    got = welch_t_from_stats(a.mean(), a.var(ddof=1), len(a), b.mean(), b.var(ddof=1), len(b))
    assert got.statistic == pytest.approx(ref.statistic)
    assert got.p_value == pytest.approx(ref.p_value)
    assert welch_t_from_stats(1.0, 0.0, 10, 1.0, 0.0, 10).p_value == 1.0
