"""Change points in bounded-resource series: drops (GC, clean-ups, restarts) and teeth.

A bounded resource only falls quickly when something frees it. One fall is a change point
(the trend restarts after it); several make a sawtooth whose *floors* (what survives each
collection) tell a leak from a healthy cycle.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from novacron.forecasting._stats import FloatArray, robust_sigma

__all__ = ["Teeth", "find_drops", "teeth"]

_CONFIRM = 3  # points each side of a fall that must differ by the threshold too


def _level_shifts(y: FloatArray) -> FloatArray:
    """``out[i - 1]`` = median of the few readings from ``i`` minus median of the few before.

    A fall shows in this as clearly as in a single step, but the noise is smaller (each
    side is a median of several readings), so a faint tooth is not lost in the noise.
    Only whole windows count (NaN elsewhere): a fall in the last few readings is judged
    once the readings after it are in, so a single low reading is never a clean-up.
    """
    out = np.full(max(0, y.size - 1), np.nan)
    if y.size < 2 * _CONFIRM:
        return out
    medians = np.median(sliding_window_view(y, _CONFIRM), axis=1)  # medians[j] covers y[j : j + CONFIRM]
    i = np.arange(_CONFIRM, y.size - _CONFIRM + 1)
    out[i - 1] = medians[i] - medians[i - _CONFIRM]
    return out


def find_drops(y: FloatArray, limit: float, sigmas: float, min_fraction: float) -> list[int]:
    """Indices ``i`` where ``y`` fell sharply and stayed down from ``i`` on.

    A fall counts when it exceeds both ``sigmas`` robust standard deviations of the
    step-to-step changes (so noise never counts) and ``min_fraction`` of the limit (so
    tiny wiggles on a clean series never count), and when the few points after it stay
    that much below the few before it (so a one-sample dip is no clean-up). Falls spread
    over consecutive samples are merged into one, at the last of them.

    Once two falls show a recurring cycle, its teeth are looked for again with a more
    sensitive test (medians of a few readings on each side, whose noise is smaller than a
    single step's): teeth barely above the noise would otherwise be found only now and
    then, and a cycle seen through a few of its teeth cannot be judged by its floors.
    """
    found = _single_step_drops(y, limit, sigmas, min_fraction)
    if len(found) < 2:
        return found
    return _shift_drops(y, limit, sigmas, min_fraction)


def _single_step_drops(y: FloatArray, limit: float, sigmas: float, min_fraction: float) -> list[int]:
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


def _shift_drops(y: FloatArray, limit: float, sigmas: float, min_fraction: float) -> list[int]:
    """Falls of the window-median level; one fall is placed at its steepest single step."""
    d = np.diff(y)
    shift = _level_shifts(y)
    threshold = max(sigmas * robust_sigma(shift[~np.isnan(shift)]), min_fraction * limit)
    hits = (np.flatnonzero(np.nan_to_num(shift, nan=0.0) < -threshold) + 1).tolist()
    groups: list[list[int]] = []
    for i in hits:
        if groups and i - groups[-1][-1] < _CONFIRM:
            groups[-1].append(i)
        else:
            groups.append([i])
    return [min(g, key=lambda i: float(d[i - 1])) for g in groups]


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
