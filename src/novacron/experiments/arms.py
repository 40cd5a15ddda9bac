"""Running sums for one arm of an experiment: enough for means, variances and proportions.

Only counts and sums are kept (never the samples), so an arm survives a controller
restart as three numbers in the store and merges by addition.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["ArmStats"]


@dataclass(frozen=True, slots=True)
class ArmStats:
    """``n`` observations with their sum and sum of squares."""

    n: int = 0
    total: float = 0.0
    total_sq: float = 0.0

    @classmethod
    def of(cls, values: list[float] | tuple[float, ...]) -> ArmStats:
        """Stats of a batch of values."""
        return cls(len(values), math.fsum(values), math.fsum(v * v for v in values))

    @classmethod
    def bernoulli(cls, successes: int, n: int) -> ArmStats:
        """Stats of ``n`` 0/1 outcomes of which ``successes`` are 1 (x² = x)."""
        if not 0 <= successes <= n:
            raise ValueError(f"successes ({successes}) must lie in 0..n ({n})")
        return cls(n, float(successes), float(successes))

    def __add__(self, other: ArmStats) -> ArmStats:
        return ArmStats(self.n + other.n, self.total + other.total, self.total_sq + other.total_sq)

    @property
    def mean(self) -> float:
        """Sample mean (0 for an empty arm)."""
        return self.total / self.n if self.n else 0.0

    @property
    def variance(self) -> float:
        """Unbiased sample variance (0 below two observations)."""
        if self.n < 2:
            return 0.0
        return max(0.0, (self.total_sq - self.total * self.total / self.n) / (self.n - 1))
