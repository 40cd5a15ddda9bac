"""Leak detection and time-to-exhaustion: leaks are found early with honest ETAs, healthy
cycles (GC sawtooth, periodic clean-ups, noise) are never called leaks."""

from __future__ import annotations

import numpy as np
import pytest

from novacron.forecasting import AlreadyExhaustedError, assess_exhaustion, time_to_exhaustion
from novacron.forecasting.synthetic import LEAK_KINDS, SAFE_KINDS, make_series


@pytest.mark.parametrize("kind", LEAK_KINDS)
@pytest.mark.parametrize("seed", [1, 2])
def test_leak_found_at_a_fifth_of_the_run_up_with_eta_within_a_fifth(kind: str, seed: int) -> None:
    s = make_series(kind, n=2000, seed=seed)
    k = 400
    verdict = assess_exhaustion(s.t[:k], s.y[:k], s.limit)
    assert verdict.leak, verdict.reason
    assert s.exhausted_at is not None
    truth = s.exhausted_at - s.t[k - 1]
    assert abs(verdict.eta_s - truth) <= 0.2 * truth
    assert verdict.interval[0] <= verdict.eta_s <= verdict.interval[1]
    assert 0.0 < verdict.confidence <= 1.0


@pytest.mark.parametrize("kind", SAFE_KINDS)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_healthy_cycles_are_not_leaks(kind: str, seed: int) -> None:
    s = make_series(kind, n=2000, seed=seed)
    # Once one cycle has been seen the series must not alarm at any later point.
    for k in range(800, 2001, 100):
        verdict = assess_exhaustion(s.t[:k], s.y[:k], s.limit)
        assert not verdict.leak, (k, verdict.reason, verdict.eta_s)


def test_sawtooth_uses_tooth_floors() -> None:
    s = make_series("sawtooth_leak", n=1000, seed=4)
    verdict = assess_exhaustion(s.t[:400], s.y[:400], s.limit)
    assert verdict.leak
    assert verdict.mode == "floors"
    height = verdict.evidence["tooth_height"]
    assert isinstance(height, float)
    assert height > 0


def test_trend_restarts_after_a_drop() -> None:
    t = np.arange(400, dtype=float)
    # Leaked up to 80, was restarted to 20, and has been flat since.
    y = np.where(t < 200, 20 + 0.3 * t, 20.0) + np.random.default_rng(0).normal(0, 0.2, 400)
    verdict = assess_exhaustion(t, y, 100.0)
    assert not verdict.leak
    assert verdict.window[0] >= 200


def test_recent_acceleration_shortens_the_window() -> None:
    t = np.arange(800, dtype=float)
    y = np.where(t < 600, 30.0, 30.0 + 0.2 * (t - 600)) + np.random.default_rng(1).normal(0, 0.3, 800)
    verdict = assess_exhaustion(t, y, 100.0)
    assert verdict.leak
    # The flat past must not dilute the slope: 70 units of headroom at about 0.2 per second.
    assert verdict.eta_s == pytest.approx((100 - y[-10:].mean()) / 0.2, rel=0.15)


def test_already_exhausted_is_an_answer_not_an_eta() -> None:
    t = np.arange(50, dtype=float)
    y = np.linspace(50, 120, 50)
    verdict = assess_exhaustion(t, y, 100.0)
    assert verdict.leak
    assert verdict.eta_s == 0.0
    assert verdict.reason == "already exhausted"
    with pytest.raises(AlreadyExhaustedError, match="already exhausted"):
        time_to_exhaustion(t, y, 100.0)


def test_short_history_says_how_much_is_needed() -> None:
    t = np.arange(10, dtype=float)
    verdict = assess_exhaustion(t, t + 1.0, 100.0)
    assert not verdict.leak
    assert "need 20 points" in verdict.reason


def test_constant_series_is_not_a_leak() -> None:
    t = np.arange(100, dtype=float)
    verdict = assess_exhaustion(t, np.full(100, 42.0), 100.0)
    assert not verdict.leak
    assert verdict.reason == "constant series"
