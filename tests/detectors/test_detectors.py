"""What each detector is for: the anomalies it should catch and the calm it should keep."""

from __future__ import annotations

import numpy as np
import pytest

from novacron.detectors import (
    CUSUM,
    EWMA,
    Ensemble,
    HoltWinters,
    IsolationForestDetector,
    Likelihood,
    PageHinkley,
    PhiAccrual,
    PhiAccrualDetector,
    RobustZScore,
    SLOBurnRate,
)

RNG = np.random.default_rng(42)


def _noise(n: int, level: float = 10.0, sd: float = 1.0) -> np.ndarray:
    return level + RNG.normal(0, sd, n)


def test_zscore_flags_a_spike_but_not_noise() -> None:
    x = _noise(600)
    x[500] = 30
    s = RobustZScore().score_many(x)
    assert s[500] > 10
    assert np.max(np.delete(s[100:], 400)) < 6


def test_zscore_scale_floor_keeps_flat_stretches_sane() -> None:
    x = np.r_[np.full(300, 5.0), 5.001]
    s = RobustZScore(rel_scale=1e-3).score_many(x)
    assert s[-1] < 1.0  # a 0.02 % wiggle on a flat line is not an incident


def test_one_sided_detectors_ignore_the_other_side() -> None:
    x = np.r_[_noise(300), 0.0]
    assert RobustZScore(side="up").score_many(x)[-1] == 0.0
    assert EWMA(side="up").score_many(x)[-1] == 0.0


def test_holt_winters_learns_the_daily_cycle() -> None:
    day = 48
    t = np.arange(day * 20)
    x = 100 + 30 * np.sin(2 * np.pi * t / day) + RNG.normal(0, 1, t.size)
    x[-5] += 25
    hw = HoltWinters(period_daily=day, period_weekly=0).score_many(x)
    plain = EWMA().score_many(x)
    assert hw[-5] > 6
    # The cycle's own swing hides the spike from a plain EWMA.
    assert plain[-5] < hw[-5] / 2


def test_cusum_and_page_hinkley_catch_a_slow_creep() -> None:
    x = np.r_[_noise(500), _noise(300) + np.linspace(0, 3, 300)]
    cusum = CUSUM(alpha=0.005).score_many(x)
    ph = PageHinkley().score_many(x)
    z = RobustZScore().score_many(x)
    assert cusum[500:].max() > CUSUM.default_threshold
    assert cusum[100:500].max() < CUSUM.default_threshold
    assert ph[500:].max() > 2 * ph[100:500].max()
    assert z[500:].max() < 6  # a point-wise test does not see it


def test_slo_burn_fires_on_fast_burn_only() -> None:
    det = SLOBurnRate(objective=0.999, step_s=60.0)
    ok = det.score_many(np.full(600, 0.0005))  # burning at half the budget rate
    assert ok.max() < 1.0
    hot = det.score_many(np.full(60, 0.02))  # 20x the budget rate for an hour
    assert hot.max() >= 1.0


def test_slo_burn_counts_slow_requests_as_bad() -> None:
    det = SLOBurnRate(objective=0.99, step_s=60.0, bad_above=0.3)
    assert det.score_many(np.full(30, 0.1)).max() == 0.0
    assert det.score_many(np.full(30, 0.5)).max() >= 1.0


def test_phi_detector_is_the_shared_implementation() -> None:
    beats = np.cumsum(np.full(50, 1.0))
    det, ref = PhiAccrualDetector(), PhiAccrual()
    for b in beats:
        det.learn_one(b)
        ref.heartbeat(b)
    assert isinstance(det, PhiAccrual)
    assert det.score_one(beats[-1] + 5) == pytest.approx(ref.phi(beats[-1] + 5))
    assert det.score_one(beats[-1] + 5) > det.default_threshold
    assert det.score_one(float("nan")) == 0.0


def test_likelihood_and_ensemble_are_probabilities() -> None:
    x = _noise(800)
    x[700] = 40
    for det in (Likelihood(), Ensemble()):
        s = det.score_many(x)
        assert np.all((s >= 0) & (s <= 1))
        assert s[700] >= 0.5
        assert np.quantile(s[200:690], 0.99) < 0.5


def test_refractory_silences_the_echo_of_an_alarm() -> None:
    x = _noise(800)
    x[700:705] = 40
    s = Ensemble(refractory=50).score_many(x)
    assert s[700] >= 0.5
    assert np.all(s[701:751] == 0)


def test_isolation_forest_isolates_an_outlier() -> None:
    x = _noise(400)
    x[350] = 35
    det = IsolationForestDetector(min_train=100, refit_every=100, n_estimators=20, seed=1)
    s = det.score_many(x)
    assert s[350] > 0.65
    assert np.median(s[150:340]) < 0.55


def test_phi_well_ahead_of_a_regular_schedule_is_zero_not_an_overflow() -> None:
    # Beats every 0.5 s (std at its floor) with 3 s of acceptable pause: 0.9 s after a beat
    # the standardised lateness is about -26, where the tail's exponent passes a float's range.
    det = PhiAccrual(acceptable_pause_s=3.0)
    for i in range(20):
        det.heartbeat(i * 0.5)
    assert det.phi(9.5 + 0.9) == 0.0
    assert det.phi(9.5 + 60.0) > det.threshold
