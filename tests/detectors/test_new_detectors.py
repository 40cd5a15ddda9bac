"""What the detectors added for NAB catch, beyond the shared contract."""

from __future__ import annotations

import numpy as np
import pytest

from novacron.detectors import ARTNovelty, KNNConformal, SpectralResidual, ValueRank
from novacron.detectors.pipeline import general_ensemble


def _noise(n: int, seed: int = 4) -> np.ndarray:
    return np.random.default_rng(seed).normal(10.0, 1.0, n)


def test_rank_is_the_conformal_tail_probability() -> None:
    det = ValueRank(history=4, min_history=4)
    for v in (1.0, 2.0, 3.0, 4.0):
        det.learn_one(v)
    assert det.p_one(10.0) == pytest.approx(2 * 1 / 5), "above all four: 1/(n+1), two-sided"
    assert det.p_one(2.5) == pytest.approx(1.0)
    det.learn_one(5.0)  # the window slides: 2, 3, 4, 5
    assert det.p_one(1.5) == pytest.approx(2 * 1 / 5)


def test_rank_opinion_damps_a_recurring_spike_but_not_a_new_extreme() -> None:
    x = _noise(3000)
    spikes = np.arange(300, 2700, 288)  # a daily job, every 288 five-minute steps
    x[spikes] += 8.0
    x[2900] += 30.0  # something new
    with_rank = general_ensemble(300.0, refractory=0).score_many(x)
    without = general_ensemble(300.0, refractory=0, rank_history=0).score_many(x)
    late = spikes[spikes > 1500]
    assert np.max(with_rank[late]) < np.max(without[late]) - 0.2, "a spike seen before is less surprising"
    assert with_rank[2900] == pytest.approx(1.0), "nothing was ever this high"


def test_knn_conformal_learns_a_repeating_shape() -> None:
    shape = np.tile(np.r_[np.zeros(20), np.linspace(0, 5, 5), np.zeros(5)], 40)
    x = shape + np.random.default_rng(1).normal(0, 0.05, shape.size)
    x[1000:1010] = 3.0  # a plateau the series never showed
    s = KNNConformal(dim=10, train=300, k=5, calibration=200).score_many(x)
    assert s[1005] > 0.9
    assert np.median(s[600:900]) < 0.5


def test_spectral_residual_stands_out_a_spike() -> None:
    x = np.sin(np.arange(600) * 2 * np.pi / 50) + _noise(600, 2) * 0.05
    x[500] += 4.0
    s = SpectralResidual().score_many(x)
    assert s[500] > 3.0, "the paper's alarm level"
    assert np.percentile(s[200:490], 99) < s[500]


def test_art_founds_a_category_for_a_new_shape() -> None:
    x = np.tile(np.r_[np.zeros(8), np.ones(8)], 60).astype(float)
    x[900:916] = 0.5  # a half-level the square wave never had
    s = ARTNovelty(window=16, features=8).score_many(x)
    assert np.max(s[400:880]) < 1.0, "every phase of the square wave resonates by now"
    assert np.max(s[900:916]) == pytest.approx(1.0)
