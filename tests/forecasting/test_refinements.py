"""Accelerating leaks get an earlier ETA than their average slope, faint sawtooth teeth are
all found, and the capacity combination is fitted on replays and falls back to naive."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from novacron.forecasting import assess_exhaustion
from novacron.forecasting._curvature import fit_curvature
from novacron.forecasting._segments import _single_step_drops, find_drops
from novacron.forecasting.capacity import combination_weights

N = 2000
X = np.arange(N, dtype=np.float64)
T = X * 10.0
LIMIT = 100.0


def _noisy(base: np.ndarray, seed: int) -> np.ndarray:
    return base + np.random.default_rng(seed).normal(0.0, 0.5, base.size)


@pytest.mark.parametrize("seed", [11, 12])
def test_accelerating_leak_gets_an_eta_near_the_truth_and_a_wide_interval(seed: int) -> None:
    y = _noisy(20.0 + 80.0 * (X / (N - 1)) ** 2, seed)
    k = 600
    verdict = assess_exhaustion(T[:k], y[:k], LIMIT)
    truth = T[-1] - T[k - 1]
    assert verdict.leak
    assert verdict.evidence["trend_shape"] == "accelerating"
    assert abs(verdict.eta_s - truth) <= 0.1 * truth
    # The straight line alone is far too late; the interval keeps it as the late end.
    linear = float(verdict.evidence["linear_eta_s"])
    assert linear > 1.3 * truth
    assert verdict.interval[0] <= verdict.eta_s < linear <= verdict.interval[1]


@pytest.mark.parametrize("seed", [11, 12])
def test_straight_and_recently_started_leaks_keep_the_line(seed: int) -> None:
    straight = _noisy(20.0 + 80.0 * X / (N - 1), seed)
    hinge = _noisy(20.0 + 80.0 * np.maximum(0.0, (X - 1000) / (N - 1000 - 1)), seed)
    for y, k in ((straight, 400), (hinge, 1200)):
        verdict = assess_exhaustion(T[:k], y[:k], LIMIT)
        assert verdict.leak
        assert verdict.evidence["trend_shape"] == "linear"
        truth = T[-1] - T[k - 1]
        assert abs(verdict.eta_s - truth) <= 0.1 * truth


def test_curvature_needs_three_cycles_with_a_season() -> None:
    day = 86_400.0
    t = np.arange(0.0, 2.5 * day, 300.0)
    y = 10.0 + (t / day) ** 2 + np.sin(2 * np.pi * t / day)
    assert fit_curvature(t, y, season_s=day) is None
    t3 = np.arange(0.0, 4 * day, 300.0)
    y3 = 10.0 + (t3 / day) ** 2 + np.sin(2 * np.pi * t3 / day)
    curve = fit_curvature(t3, y3, season_s=day)
    assert curve is not None
    assert curve.accelerating


def test_faint_sawtooth_teeth_are_all_found() -> None:
    # Teeth of 6 over noise of 1: a single-step test sees only a few of them.
    rng = np.random.default_rng(6)
    period, teeth_count = 45, 9
    x = np.arange(period * teeth_count, dtype=np.float64)
    y = 30.0 + 6.0 * (x % period) / period + rng.normal(0.0, 1.0, x.size)
    drops = find_drops(y, LIMIT, 4.0, 0.02)
    true = set(range(period, x.size, period))
    near = [d for d in drops if min(abs(d - s) for s in true) <= 2]
    assert len(near) == len(drops)  # no false teeth
    assert len(drops) >= len(true) - 1  # at most one tooth lost in the noise
    assert len(_single_step_drops(y, LIMIT, 4.0, 0.02)) < len(true) // 2


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.floats(0.5, 6.0))
def test_noise_alone_has_no_drops(seed: int, sigma: float) -> None:
    y = 50.0 + np.random.default_rng(seed).normal(0.0, sigma, 400)
    assert find_drops(y, LIMIT, 4.0, 0.02) == []


def test_combination_averages_the_best_two_and_sums_to_one() -> None:
    rng = np.random.default_rng(0)
    base = rng.normal(0.0, 1.0, (6, 24))
    errors = {
        "seasonal_naive": base * 3.0,
        "a": base * 0.5 + rng.normal(0.0, 0.1, base.shape),
        "b": -base * 0.6 + rng.normal(0.0, 0.1, base.shape),
        "c": base * 2.5,
    }
    weights = combination_weights(errors)
    assert sum(weights.values()) == pytest.approx(1.0)
    assert set(weights) <= {"a", "b", "seasonal_naive"}
    assert weights["a"] == pytest.approx(weights["b"])


def test_combination_falls_back_to_naive_without_skill() -> None:
    rng = np.random.default_rng(1)
    naive = rng.normal(0.0, 1.0, (6, 24))
    errors = {"seasonal_naive": naive, "a": naive + 5.0, "b": naive - 6.0}
    assert combination_weights(errors) == {"seasonal_naive": pytest.approx(1.0)}


def test_seasonal_mean_averages_the_last_week_phase_by_phase() -> None:
    from novacron.forecasting._models import seasonal_mean

    day = np.array([1.0, 5.0, 3.0])
    week = np.tile(day, 9) + np.repeat(np.arange(9.0), 3)  # the level rises by one a day
    fc = seasonal_mean(week, 3, 5)
    assert fc.tolist() == pytest.approx([day[i % 3] + 5.0 for i in range(5)]), "mean of days 2..8"
    assert seasonal_mean(np.array([2.0, 4.0]), 3, 2).tolist() == [2.0, 4.0], "shorter than a season: as is"
    assert seasonal_mean(np.arange(10.0), 1, 2).tolist() == [6.0, 6.0], "no season: the mean of the last 7"


def test_noisy_daily_cycle_is_planned_on_the_weekly_seasonal_mean() -> None:
    """Hourly usage whose days repeat under heavy noise: averaging the week beats yesterday."""
    from novacron.forecasting.capacity import plan_capacity

    hours = np.arange(24 * 28, dtype=np.float64)
    y = 50.0 + 10.0 * np.sin(2 * np.pi * hours / 24) + np.random.default_rng(3).normal(0.0, 4.0, hours.size)
    plan = plan_capacity(y, interval_s=3600.0, capacity=500.0, horizons_days=(3.0,))
    assert plan.model_scores["seasonal_mean"] < plan.model_scores["seasonal_naive"]
    assert plan.model_scores["combination"] < plan.model_scores["seasonal_naive"]
