"""Bandit allocation and the per-arm request tally."""

from __future__ import annotations

import numpy as np
import pytest

from novacron.experiments import Tally, Thompson, Ucb1
from novacron.experiments.tally import ArmWindow


def _play(bandit: Ucb1 | Thompson, rates: dict[str, float], rounds: int) -> dict[str, int]:
    rng = np.random.default_rng(5)
    pulls = dict.fromkeys(rates, 0)
    for _ in range(rounds):
        arm = bandit.choose()
        pulls[arm] += 1
        bandit.update(arm, float(rng.random() < rates[arm]))
    return pulls


@pytest.mark.parametrize("kind", [Ucb1, Thompson])
def test_bandits_send_most_pulls_to_the_best_arm(kind: type[Ucb1] | type[Thompson]) -> None:
    rates = {"a": 0.90, "b": 0.97, "c": 0.80}
    bandit = kind(list(rates), seed=1)
    pulls = _play(bandit, rates, 3000)
    assert max(pulls, key=lambda k: pulls[k]) == "b"
    weights = bandit.weights()
    assert sum(weights.values()) == pytest.approx(1.0)
    assert max(weights, key=lambda k: weights[k]) == "b"
    assert min(weights.values()) >= 0.009


def test_ucb1_tries_every_arm_first_and_bandits_reject_bad_input() -> None:
    bandit = Ucb1(["a", "b", "c"])
    seen = set()
    for _ in range(3):
        arm = bandit.choose()
        seen.add(arm)
        bandit.update(arm, 1.0)
    assert seen == {"a", "b", "c"}
    with pytest.raises(ValueError, match="two distinct"):
        Thompson(["a"])
    with pytest.raises(KeyError, match="no arm"):
        bandit.update("z", 1.0)
    with pytest.raises(ValueError, match="reward"):
        bandit.update("a", 2.0)


def test_tally_learns_the_threshold_from_the_baseline_then_counts_slow_requests() -> None:
    tally = Tally(["a", "b"], "a", quantile=0.9, warmup=10)
    for i in range(10):
        tally.add("b", error=i == 0, latency_s=0.5)
        tally.add("a", error=False, latency_s=0.01 * (i + 1))
    assert tally.threshold_s == pytest.approx(0.09)
    assert tally.arms["b"].timed == 0  # nothing judged before the threshold exists
    tally.add("b", error=False, latency_s=0.2)
    tally.add("a", error=False, latency_s=0.01)
    assert tally.arms["b"].slow == 1
    assert tally.arms["a"].slow == 0
    assert tally.arms["b"].errors == 1
    assert tally.arms["b"].requests == 11
    again = ArmWindow.from_json(tally.arms["b"].to_json())
    assert again == tally.arms["b"]
    with pytest.raises(ValueError, match="baseline"):
        Tally(["a"], "b")
