"""Workload shapes: per-group demand multipliers as a function of simulated time.

A workload answers ``multipliers(t) -> array[groups]``; each VM's base demand is scaled by
its group's multiplier. Synthetic workloads are diurnal sines with per-group phase; trace
workloads interpolate a sampled series (the CLI reads ``shared/data/traces`` and passes
arrays in — this module does no I/O). Bursts are discrete arrivals on the event heap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

from novacron.errors import InputError
from novacron.twin.topology import FloatArray

__all__ = ["Burst", "SyntheticWorkload", "TraceWorkload", "Workload", "burst_arrivals"]

DAY_S = 86_400.0


class Workload(Protocol):
    """Demand multipliers per workload group."""

    @property
    def n_groups(self) -> int:
        """How many groups the multipliers cover."""
        ...

    def multipliers(self, t: float) -> FloatArray:
        """Multipliers (1.0 = base demand) for every group at simulated time ``t``."""
        ...


@dataclass(frozen=True, slots=True, eq=False)
class SyntheticWorkload:
    """Diurnal load ``level · (1 + amplitude · sin(2π t / period + phase_g))``."""

    n_groups: int = 8
    level: float = 1.0
    amplitude: float = 0.3
    period_s: float = DAY_S
    phase_spread: float = 0.5  # radians of phase between the first and last group
    _phase: FloatArray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.n_groups < 1:
            raise InputError(f"must be >= 1, got {self.n_groups}", where="workload.n_groups")
        if not (self.level >= 0 and 0 <= self.amplitude <= 1 and self.period_s > 0):
            raise InputError("need level >= 0, 0 <= amplitude <= 1, period_s > 0", where="workload")
        object.__setattr__(self, "_phase", np.linspace(0.0, self.phase_spread, self.n_groups))

    def multipliers(self, t: float) -> FloatArray:
        """Diurnal multipliers at ``t``."""
        angle = 2.0 * math.pi * t / self.period_s + self._phase
        out: FloatArray = self.level * (1.0 + self.amplitude * np.sin(angle))
        return out


@dataclass(frozen=True, slots=True, eq=False)
class TraceWorkload:
    """A sampled series (one column, or one per group) normalised to mean 1 and interpolated.

    With one column, groups read the same series shifted by ``group_shift_s`` each so that
    they do not peak together. Time wraps around the end of the series.
    """

    values: FloatArray
    step_s: float = 300.0
    n_groups: int = 8
    group_shift_s: float = 1800.0

    @classmethod
    def from_array(
        cls, values: npt.ArrayLike, *, step_s: float = 300.0, n_groups: int = 8, name: str = "trace"
    ) -> TraceWorkload:
        """Validate a series (rows = time) and normalise each column to mean 1."""
        arr = np.asarray(values, dtype=np.float64)
        if arr.ndim == 1:
            arr = arr[:, None]
        if arr.ndim != 2 or arr.shape[0] < 2:
            raise InputError(f"need at least 2 samples, got shape {arr.shape}", where=name)
        bad = ~np.isfinite(arr) | (arr < 0)
        if bad.any():
            row = int(np.flatnonzero(bad.any(axis=1))[0])
            raise InputError("values must be finite and >= 0", where=f"{name}[row {row}]")
        if step_s <= 0:
            raise InputError(f"must be > 0, got {step_s}", where=f"{name}.step_s")
        mean = arr.mean(axis=0)
        if (mean <= 0).any():
            raise InputError("a column is all zero", where=name)
        if arr.shape[1] not in (1, n_groups):
            raise InputError(f"needs 1 or {n_groups} columns, got {arr.shape[1]}", where=name)
        return cls(values=arr / mean, step_s=step_s, n_groups=n_groups)

    @property
    def span_s(self) -> float:
        """Length of the series in seconds."""
        return float(self.values.shape[0] * self.step_s)

    def multipliers(self, t: float) -> FloatArray:
        """Linearly interpolated multipliers at ``t`` (wrapping at the end)."""
        n = self.values.shape[0]
        if self.values.shape[1] == 1:
            times = t + np.arange(self.n_groups) * self.group_shift_s
            pos = (times / self.step_s) % n
            lo = pos.astype(np.int64)
            frac = pos - lo
            col = self.values[:, 0]
            out: FloatArray = col[lo] * (1.0 - frac) + col[(lo + 1) % n] * frac
            return out
        pos = (t / self.step_s) % n
        lo = int(pos)
        frac = pos - lo
        row: FloatArray = self.values[lo] * (1.0 - frac) + self.values[(lo + 1) % n] * frac
        return row

    def seasonal_naive(self, now_s: float, period_s: float = DAY_S) -> TraceWorkload:
        """The forecast 'tomorrow repeats the last ``period_s``', as a workload starting at ``now_s``."""
        per = max(2, round(period_s / self.step_s))
        end = round(now_s / self.step_s)
        rows = (np.arange(end - per, end) % self.values.shape[0]).astype(np.int64)
        shifted = np.roll(self.values[rows], end % per, axis=0)
        # rolling aligns row k with absolute time k·step mod period, so t keeps its meaning
        return TraceWorkload(shifted, self.step_s, self.n_groups, self.group_shift_s)


@dataclass(frozen=True, slots=True)
class Burst:
    """A short demand spike on one VM."""

    t: float
    vm: int
    cores: float
    duration_s: float


def burst_arrivals(
    rng: np.random.Generator, n_vms: int, horizon_s: float, per_hour: float, cores: float = 4.0
) -> list[Burst]:
    """Poisson burst arrivals over the horizon, exponential durations (mean 5 min)."""
    if per_hour < 0:
        raise InputError(f"must be >= 0, got {per_hour}", where="bursts_per_hour")
    count = int(rng.poisson(per_hour * horizon_s / 3600.0)) if n_vms else 0
    times = np.sort(rng.uniform(0.0, horizon_s, count))
    vms = rng.integers(0, max(n_vms, 1), count)
    durations = rng.exponential(300.0, count)
    return [Burst(float(t), int(v), cores, float(d)) for t, v, d in zip(times, vms, durations, strict=True)]
