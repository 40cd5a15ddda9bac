"""Bandit allocation for experiments with more than two arms: UCB1 and Thompson sampling.

Both follow the ask/tell shape of the project's optimisers: ``choose()`` names an arm,
``update(arm, reward)`` records what it earned, and ``weights()`` turns the current belief
into traffic shares for the load balancer (which routes by weight, not by request).
Rewards lie in [0, 1] (1 = a good request). Randomness comes from ``seed``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["Thompson", "Ucb1"]


class _Bandit:
    def __init__(self, arms: Sequence[str], *, seed: int | None = None) -> None:
        if len(arms) < 2 or len(set(arms)) != len(arms):
            raise ValueError("a bandit needs at least two distinct arms")
        self.arms = list(arms)
        self.pulls = np.zeros(len(arms))
        self.rewards = np.zeros(len(arms))
        self._rng = np.random.default_rng(seed)

    def _index(self, arm: str) -> int:
        try:
            return self.arms.index(arm)
        except ValueError:
            raise KeyError(f"no arm {arm!r}") from None

    def update(self, arm: str, reward: float, *, count: int = 1) -> None:
        """Record ``count`` pulls of ``arm`` that earned ``reward`` in total."""
        if count < 0 or not 0 <= reward <= count:
            raise ValueError("reward must lie in [0, count]")
        i = self._index(arm)
        self.pulls[i] += count
        self.rewards[i] += reward


class Ucb1(_Bandit):
    """UCB1 (Auer et al. 2002): the arm with the highest mean plus sqrt(2 ln N / n)."""

    def scores(self) -> np.ndarray:
        """Each arm's upper confidence bound (∞ until it was pulled once)."""
        total = max(1.0, float(self.pulls.sum()))
        with np.errstate(divide="ignore", invalid="ignore"):
            means = np.where(self.pulls > 0, self.rewards / self.pulls, 0.0)
            bonus = np.where(self.pulls > 0, np.sqrt(2.0 * math.log(total) / self.pulls), np.inf)
        return np.asarray(means + bonus)

    def choose(self) -> str:
        """The arm to pull next."""
        return self.arms[int(np.argmax(self.scores()))]

    def weights(self, *, floor: float = 0.01) -> dict[str, float]:
        """Traffic shares in proportion to UCB1's own allocation so far (its pulls), floored.

        A load balancer routes by weight, not request by request; UCB1's pull counts are
        the share it has been giving each arm, which concentrates on the best arm over time.
        """
        if not self.pulls.any():
            return {a: 1.0 / len(self.arms) for a in self.arms}
        return _normalised(self.arms, self.pulls / self.pulls.sum(), floor)


class Thompson(_Bandit):
    """Beta-Bernoulli Thompson sampling with a uniform Beta(1, 1) prior."""

    def _draws(self, size: int) -> np.ndarray:
        a = 1.0 + self.rewards
        b = 1.0 + self.pulls - self.rewards
        return self._rng.beta(a, b, size=(size, len(self.arms)))

    def choose(self) -> str:
        """The arm whose posterior draw is highest."""
        return self.arms[int(np.argmax(self._draws(1)[0]))]

    def weights(self, *, draws: int = 2000, floor: float = 0.01) -> dict[str, float]:
        """Traffic shares: each arm's posterior probability of being best, floored so no arm starves."""
        best = np.argmax(self._draws(draws), axis=1)
        return _normalised(self.arms, np.bincount(best, minlength=len(self.arms)) / draws, floor)


def _normalised(arms: list[str], shares: np.ndarray, floor: float) -> dict[str, float]:
    """Shares raised to ``floor`` so no arm starves, then summing to one."""
    p = np.maximum(shares, floor)
    p = p / p.sum()
    return {a: float(w) for a, w in zip(arms, p, strict=True)}
