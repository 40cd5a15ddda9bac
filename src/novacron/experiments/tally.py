"""Per-arm tallies of real requests: what a look of the canary judge sees.

Fed one request at a time (arm, server error or not, latency) from the load balancer's
request log. Latency is judged as the share of requests slower than the *baseline's*
quantile (p95 by default), estimated from the baseline's first ``warmup`` requests and
then frozen: a 20 % slower p95 in the canary shows as roughly twice as many slow requests,
a proportion the sequential test watches like the error ratio. Freezing the threshold
keeps both arms measured against the same yardstick, which the test's validity needs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from novacron.experiments.arms import ArmStats

__all__ = ["ArmWindow", "Tally"]


@dataclass(frozen=True, slots=True)
class ArmWindow:
    """One arm's counts since the experiment began."""

    requests: int = 0
    errors: int = 0
    slow: int = 0  # requests at or over the latency threshold (counted after the warm-up)
    timed: int = 0  # requests counted for ``slow``
    latency: ArmStats = field(default_factory=ArmStats)  # seconds

    @property
    def error_ratio(self) -> float:
        """Share of requests that failed (5xx)."""
        return self.errors / self.requests if self.requests else 0.0

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (also what the store keeps)."""
        return {
            "requests": self.requests,
            "errors": self.errors,
            "slow": self.slow,
            "timed": self.timed,
            "latency": [self.latency.n, self.latency.total, self.latency.total_sq],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ArmWindow:
        """Back from :meth:`to_json`."""
        n, total, total_sq = data.get("latency", [0, 0.0, 0.0])
        return cls(
            int(data["requests"]),
            int(data["errors"]),
            int(data.get("slow", 0)),
            int(data.get("timed", 0)),
            ArmStats(int(n), float(total), float(total_sq)),
        )


class Tally:
    """Counts requests per arm, and learns the latency threshold from the baseline's first requests."""

    def __init__(self, arms: list[str], baseline: str, *, quantile: float = 0.95, warmup: int = 200) -> None:
        if baseline not in arms:
            raise ValueError(f"baseline {baseline!r} is not one of the arms {arms}")
        if not 0.5 <= quantile < 1:
            raise ValueError("quantile must lie in [0.5, 1)")
        self.baseline, self.quantile, self.warmup = baseline, quantile, warmup
        self.arms: dict[str, ArmWindow] = {a: ArmWindow() for a in arms}
        self.threshold_s: float | None = None
        self._warm: list[float] = []

    def restore(self, arms: dict[str, ArmWindow], threshold_s: float | None) -> None:
        """Continue from stored counts (after a controller restart)."""
        self.arms.update(arms)
        self.threshold_s = threshold_s

    def add(self, arm: str, *, error: bool, latency_s: float) -> None:
        """Count one request served by ``arm``."""
        w = self.arms[arm]
        slow = timed = 0
        if self.threshold_s is None:
            if arm == self.baseline:
                self._warm.append(latency_s)
                if len(self._warm) >= self.warmup:
                    self.threshold_s = _quantile(self._warm, self.quantile)
        else:
            timed = 1
            slow = int(latency_s >= self.threshold_s)
        self.arms[arm] = ArmWindow(
            w.requests + 1,
            w.errors + int(error),
            w.slow + slow,
            w.timed + timed,
            w.latency + ArmStats(1, latency_s, latency_s * latency_s),
        )


def _quantile(values: list[float], q: float) -> float:
    """The q-quantile by the nearest-rank rule (no numpy needed for a few hundred values)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]
