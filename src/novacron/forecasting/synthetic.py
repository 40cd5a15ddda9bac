"""Synthetic bounded-resource series with known truth, for tests, benchmarks and demos.

Leaks: linear, step (grows in jumps), sawtooth whose floors creep up (a leak under a
garbage collector), and a noisy linear leak. Healthy: flat noise, a GC sawtooth and a
disk with periodic clean-ups. Each series knows when (if ever) its level meets the limit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from novacron.errors import InputError
from novacron.forecasting._stats import FloatArray

__all__ = ["LEAK_KINDS", "SAFE_KINDS", "SyntheticSeries", "make_series"]

LEAK_KINDS = ("linear", "step", "sawtooth_leak", "noisy")
SAFE_KINDS = ("flat", "sawtooth", "cleanup")


@dataclass(frozen=True, slots=True)
class SyntheticSeries:
    """``t`` seconds, ``y`` usage, ``limit``; ``exhausted_at`` the true time the underlying
    level (peaks, for a sawtooth) reaches the limit, or None for a healthy series."""

    kind: str
    t: FloatArray
    y: FloatArray
    limit: float
    exhausted_at: float | None

    @property
    def leaks(self) -> bool:
        """Whether the series is a leak."""
        return self.exhausted_at is not None


def make_series(kind: str, *, n: int = 2000, step_s: float = 10.0, seed: int = 0) -> SyntheticSeries:
    """One series of ``n`` points; leaks reach the limit (100) on the last point.

    The parameters (start level, period, noise) are drawn from ``seed`` so a benchmark
    sees many shapes, not one.
    """
    rng = np.random.default_rng(seed)
    x = np.arange(n, dtype=np.float64)
    t = x * step_s
    limit = 100.0
    start = rng.uniform(10.0, 40.0)
    period = int(rng.integers(15, 50))
    noise = rng.uniform(0.2, 1.0)
    jitter = rng.normal(0.0, noise, n)
    end = t[-1]
    if kind == "linear":
        y = start + (limit - start) * x / (n - 1) + jitter
    elif kind == "noisy":
        y = start + (limit - start) * x / (n - 1) + rng.normal(0.0, rng.uniform(3.0, 6.0), n)
    elif kind == "step":
        steps = np.floor(x / period)
        y = start + (limit - start) * steps / steps[-1] + jitter
    elif kind == "sawtooth_leak":
        height = rng.uniform(5.0, 15.0)
        floor = start + (limit - height - start) * x / (n - 1)
        y = floor + height * (x % period) / period + jitter
    else:
        end = -1.0
        y = _safe(kind, x, start, period, rng) + jitter
    y = np.clip(y, 0.0, None)
    return SyntheticSeries(kind=kind, t=t, y=y, limit=limit, exhausted_at=end if end >= 0 else None)


def _safe(kind: str, x: FloatArray, start: float, period: int, rng: np.random.Generator) -> FloatArray:
    if kind == "flat":
        return np.full(x.size, start + 20.0)
    if kind == "sawtooth":
        height = rng.uniform(10.0, 30.0)
        return start + height * (x % period) / period
    if kind == "cleanup":
        # Disk fills over a long cycle and a job clears most of it.
        cycle = period * 8
        return start + rng.uniform(30.0, 50.0) * (x % cycle) / cycle
    raise InputError(f"unknown synthetic series kind {kind!r}", where="kind")
