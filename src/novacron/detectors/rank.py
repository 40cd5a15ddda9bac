"""Conformal rank of a value: how rare is it among the values seen before it?

The two-sided conformal tail probability of ``x`` among the last ``history`` learned values
``v_1..v_n`` is ``p = min(1, 2·min(#{v >= x} + 1, #{v <= x} + 1) / (n + 1))``. It needs no
model and no distributional assumption: under exchangeability it is a valid p-value, so a
value above everything seen so far gets ``1/(n+1)`` and a value seen every day gets a large
one. It is the soft form of HTM's "spatial anomaly" (a value outside the range seen so far)
and, in the ensemble, the second opinion that keeps the model members from alarming on
values that are ordinary in magnitude (a daily spike the metric has shown many times).

Streaming keeps the window twice: in arrival order (a deque) and sorted (a list searched
with ``bisect``). The batch path sorts the window once per chunk and corrects the counts
for the values that enter and leave it inside the chunk, so both paths count the very
same values.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right, insort
from collections import deque

import numpy as np
import numpy.typing as npt

from novacron.detectors.base import (
    Detector,
    FloatArray,
    check_positive,
    clip_value,
    finish_scores,
    register,
    sanitize_batch,
)
from novacron.detectors.likelihood import p_to_score

__all__ = ["ValueRank", "rank_p_values"]

# Batch chunk: each chunk costs one sort of the window and a chunk x chunk comparison.
_CHUNK = 256


def rank_p_values(values: FloatArray, history: FloatArray, size: int, min_history: int, seen: int) -> FloatArray:
    """Two-sided conformal p-values of ``values`` (in order), each against the ``size``
    values before it; ``history`` holds the window before ``values[0]`` and ``seen`` how
    many values were learned before it (for the warm-up)."""
    allv = np.concatenate([history, values])
    h0 = history.shape[0]
    out = np.ones(values.shape[0])
    for lo in range(0, values.shape[0], _CHUNK):
        hi = min(lo + _CHUNK, values.shape[0])
        out[lo:hi] = _chunk_p(allv, h0 + lo, h0 + hi, size)
    counts = seen + np.arange(values.shape[0])
    return np.where(counts < min_history, 1.0, out)


def _chunk_p(allv: FloatArray, a: int, b: int, size: int) -> FloatArray:
    """p-values of ``allv[a:b]``, each against the ``size`` values before it."""
    x = allv[a:b]
    base_lo = max(0, a - size)
    base = np.sort(allv[base_lo:a])
    ge = base.shape[0] - np.searchsorted(base, x, side="left")
    le = np.searchsorted(base, x, side="right")
    m = b - a
    j = np.arange(m)
    # Values inside the chunk before point j join its window ...
    earlier = j[None, :] < j[:, None]
    ge = ge + np.count_nonzero(earlier & (x[None, :] >= x[:, None]), axis=1)
    le = le + np.count_nonzero(earlier & (x[None, :] <= x[:, None]), axis=1)
    # ... and the oldest values leave it once the window is full: point j's window starts
    # at max(0, g - size) (g = a + j), so the first n_drop values of the base are gone.
    g = a + j
    n_drop = np.maximum(0, g - size) - base_lo
    if n_drop.max(initial=0) > 0:
        t = np.arange(int(n_drop.max()))
        dropped = allv[base_lo + t]
        gone = t[None, :] < n_drop[:, None]
        ge = ge - np.count_nonzero(gone & (dropped[None, :] >= x[:, None]), axis=1)
        le = le - np.count_nonzero(gone & (dropped[None, :] <= x[:, None]), axis=1)
    n = np.minimum(g, size)  # window length before point j
    p = 2.0 * np.minimum(ge + 1, le + 1) / (n + 1)
    return np.asarray(np.minimum(1.0, p), dtype=np.float64)


@register("rank")
class ValueRank(Detector):
    """Two-sided conformal rank of each value among the last ``history`` values, in [0, 1].

    The score is ``-log10(p) / decades`` (``decades=10``: 0.3 means p = 0.001). Until
    ``min_history`` values have been learned every value scores 0.
    """

    default_threshold = 0.3
    unit_interval = True

    def __init__(self, *, history: int = 4000, min_history: int = 100, decades: float = 10.0) -> None:
        check_positive("history", history)
        check_positive("min_history", min_history)
        check_positive("decades", decades)
        self.history = int(history)
        self.min_history = int(min_history)
        self.decades = decades
        self._order: deque[float] = deque()
        self._sorted: list[float] = []
        self._n = 0

    def p_one(self, x: float) -> float:
        """Tail probability of ``x`` against the window (1.0 while warming up or missing)."""
        if not math.isfinite(x) or self._n < self.min_history:
            return 1.0
        x = clip_value(x)
        srt = self._sorted
        n = len(srt)
        ge = n - bisect_left(srt, x)
        le = bisect_right(srt, x)
        return min(1.0, 2.0 * (min(ge, le) + 1) / (n + 1))

    def score_one(self, x: float) -> float:
        """Rarity score of ``x`` in [0, 1]."""
        return p_to_score(self.p_one(x), self.decades)

    def learn_one(self, x: float) -> None:
        """Add ``x`` to the window, dropping the oldest value when it is full."""
        if not math.isfinite(x):
            return
        x = clip_value(x)
        if len(self._order) == self.history:
            old = self._order.popleft()
            del self._sorted[bisect_left(self._sorted, old)]
        self._order.append(x)
        insort(self._sorted, x)
        self._n += 1

    def p_many(self, good: FloatArray) -> FloatArray:
        """Tail probabilities of finite values, learning them (the batch path)."""
        if good.shape[0] == 0:
            return np.ones(0)
        hist = np.asarray(self._order, dtype=np.float64)
        p = rank_p_values(good, hist, self.history, self.min_history, self._n)
        allv = np.concatenate([hist, good])[-self.history :]
        self._order = deque(allv.tolist())
        self._sorted = sorted(self._order)
        self._n += good.shape[0]
        return p

    def score_many(self, xs: npt.ArrayLike) -> FloatArray:
        """Vectorised score-then-learn."""
        vals, ok = sanitize_batch(xs)
        p = self.p_many(vals[ok])
        out = np.zeros(vals.shape[0])
        out[ok] = np.clip(-np.log10(np.maximum(p, 1e-300)) / self.decades, 0.0, 1.0)
        return finish_scores(out)
