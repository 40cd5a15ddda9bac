"""Change points in bounded-resource series: drops (GC, clean-ups, restarts) and teeth.

A bounded resource only falls quickly when something frees it. One fall is a change point
(the trend restarts after it); several make a sawtooth whose *floors* (what survives each
collection) tell a leak from a healthy cycle.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from novacron.forecasting._stats import FloatArray, robust_sigma

__all__ = ["Teeth", "find_drops", "teeth"]

_CONFIRM = 3  # points each side of a fall that must differ by the threshold too


def find_drops(y: FloatArray, limit: float, sigmas: float, min_fraction: float) -> list[int]:
    """Indices ``i`` where ``y`` fell sharply and stayed down from ``i`` on.

    A fall counts when it exceeds both ``sigmas`` robust standard deviations of the
    step-to-step changes (so noise never counts) and ``min_fraction`` of the limit (so
    tiny wiggles on a clean series never count), and when the few points after it stay
    that much below the few before it (so a one-sample dip is no clean-up). Falls spread
    over consecutive samples are merged into one, at the last of them.
    """
    if y.size < 2:
        return []
    d = np.diff(y)
    threshold = max(sigmas * robust_sigma(d), min_fraction * limit)
    merged: list[int] = []
    for i in (np.flatnonzero(d < -threshold) + 1).tolist():
        before = np.median(y[max(0, i - _CONFIRM) : i])
        after = np.median(y[i : i + _CONFIRM])
        if before - after < threshold:
            continue
        if merged and i - merged[-1] <= 1:
            merged[-1] = i
        else:
            merged.append(i)
    return merged


@dataclass(frozen=True, slots=True)
class Teeth:
    """The sawtooth seen between drops.

    ``floor_t``/``floor_y``: time and value of each tooth's minimum, one per drop;
    ``amplitude``: median rise from floor to peak over complete teeth;
    ``period_s``: median time between drops; ``highest_peak``: the highest value any
    complete tooth reached (``-inf`` without one).
    """

    floor_t: FloatArray
    floor_y: FloatArray
    amplitude: float
    period_s: float
    highest_peak: float


def teeth(t: FloatArray, y: FloatArray, drops: list[int]) -> Teeth:
    """Summarise the teeth that start at each drop (the part before the first is skipped)."""
    bounds = [*drops, t.size]
    floor_t: list[float] = []
    floor_y: list[float] = []
    amplitudes: list[float] = []
    peaks: list[float] = []
    for k, start in enumerate(drops):
        end = bounds[k + 1]
        seg = y[start:end]
        j = int(np.argmin(seg))
        floor_t.append(float(t[start + j]))
        floor_y.append(float(seg[j]))
        if end < t.size:  # a complete tooth: it ended with the next drop
            amplitudes.append(float(np.max(seg) - seg[j]))
            peaks.append(float(np.max(seg)))
    periods = np.diff(t[np.asarray(drops, dtype=np.int64)]) if len(drops) > 1 else np.zeros(0)
    return Teeth(
        floor_t=np.asarray(floor_t),
        floor_y=np.asarray(floor_y),
        amplitude=float(np.median(amplitudes)) if amplitudes else 0.0,
        period_s=float(np.median(periods)) if periods.size else 0.0,
        highest_peak=max(peaks, default=-np.inf),
    )
