"""Calibration: raw scores → anomaly likelihood (a tail probability), and the ensemble.

Raw scores from different detectors live on different scales; an operator needs one that
means the same thing everywhere. Following Numenta's anomaly likelihood (Ahmad et al.,
2017), the short-term average of a detector's recent raw scores is compared with the
distribution of that average over a long history; the Gaussian tail probability ``p`` of
the current average is the calibrated output, reported as ``-log10(p) / decades`` clipped
to [0, 1] (so 0.5 with ``decades=10`` means p = 1e-5).

Raw scores are compressed with ``log1p`` first: z-like scores are heavy-tailed and the
Gaussian model of their average fits far better on a log scale.

Familiarity: a Gaussian tail calls every big spike a one-in-a-million event, even when
the same spike comes every few hours (a cron job, a batch flush). So when a value's tail
is below ``familiar_cap`` but at least ``familiar_count`` values in the history were as
large, its probability is raised to the empirical frequency (capped at
``familiar_cap``): the first such spike alarms, its regular repeats do not.
"""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from collections import deque
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.special import ndtr

from novacron.detectors.base import (
    Detector,
    FloatArray,
    check_fraction,
    check_positive,
    finish_scores,
    register,
    sanitize_batch,
)
from novacron.detectors.robust import RobustZScore
from novacron.errors import InputError

__all__ = ["Likelihood", "p_to_score"]

_RAW_CAP = 1e6
_P_FLOOR = 1e-300


def p_to_score(p: float, decades: float) -> float:
    """Tail probability → score in [0, 1]: ``-log10(p) / decades``, clipped."""
    return min(1.0, max(0.0, -math.log10(max(p, _P_FLOOR)) / decades))


class _Prefix:
    """Bounded prefix sums: any window sum over the last ``size`` values in O(1)."""

    __slots__ = ("sums",)

    def __init__(self, size: int) -> None:
        self.sums: deque[float] = deque([0.0], maxlen=size + 1)

    def window(self, value: float, width: int) -> tuple[float, int]:
        """Sum and count of the last ``width`` values if ``value`` were appended."""
        sums = self.sums
        k = min(width, len(sums))
        return sums[-1] + value - sums[len(sums) - k], k

    def extend(self, values: FloatArray) -> FloatArray:
        """Append values; return all prefix sums (history first) for window arithmetic."""
        hist = np.asarray(self.sums, dtype=np.float64)
        allp = np.concatenate([hist[:-1], np.cumsum(np.concatenate([[hist[-1]], values]))])
        # Only the newest ``maxlen`` sums survive the deque: convert just those.
        keep = min(allp.shape[0] - hist.shape[0], self.sums.maxlen or 0)
        self.sums.extend(allp[allp.shape[0] - keep :].tolist())
        return allp


class _Familiar:
    """The last ``size`` values, also kept sorted, to count how many were at least ``v``."""

    __slots__ = ("order", "ranked")

    def __init__(self, size: int) -> None:
        self.order: deque[float] = deque(maxlen=size)
        self.ranked: list[float] = []

    def at_least(self, v: float) -> int:
        """How many remembered values are >= ``v``."""
        return len(self.ranked) - bisect_left(self.ranked, v)

    def push(self, v: float) -> None:
        """Remember ``v``, forgetting the oldest value when full."""
        order, ranked = self.order, self.ranked
        if len(order) == order.maxlen:
            del ranked[bisect_left(ranked, order[0])]
        order.append(v)
        insort(ranked, v)

    def counts(
        self, values: FloatArray, idx: npt.NDArray[np.intp]
    ) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
        """For ``values[j]``, j in ``idx``: (#values >= it, window size) over the values before it."""
        hist = np.asarray(self.order, dtype=np.float64)
        seq = np.concatenate([hist, values])
        size = self.order.maxlen or 1
        cnt = np.zeros(idx.shape[0], dtype=np.intp)
        width = np.zeros(idx.shape[0], dtype=np.intp)
        for n, j in enumerate(idx.tolist()):
            end = hist.shape[0] + j
            lo = max(0, end - size)
            cnt[n] = np.count_nonzero(seq[lo:end] >= values[j])
            width[n] = end - lo
        return cnt, width

    def extend(self, values: FloatArray) -> None:
        """Remember a batch of values (only the newest ``maxlen`` can survive)."""
        size = self.order.maxlen or 0
        self.order.extend(values[max(0, values.shape[0] - size) :].tolist())
        self.ranked = sorted(self.order)


@dataclass(slots=True)
class _State:
    """The wrapped detector and the bounded prefix sums the calibration needs."""

    base: Detector
    raw: _Prefix  # raw scores, for the short average
    avg: _Prefix  # short averages and their squares, for their long-run distribution
    avg_sq: _Prefix
    point: _Prefix  # raw scores and squares, for the single-point distribution
    point_sq: _Prefix
    avg_seen: _Familiar  # the same values again, for familiarity counts
    point_seen: _Familiar


@register("likelihood")
class Likelihood(Detector):
    """Anomaly likelihood of another detector's raw scores, in [0, 1]."""

    default_threshold = 0.5
    unit_interval = True

    def __init__(
        self,
        *,
        detector: Detector | None = None,
        history: int = 2000,
        short: int = 10,
        min_history: int = 100,
        min_std: float = 0.05,
        decades: float = 10.0,
        familiar_count: int = 3,
        familiar_cap: float = 1e-3,
    ) -> None:
        check_positive("history", history)
        check_positive("short", short)
        check_positive("min_history", min_history)
        check_positive("min_std", min_std)
        check_positive("decades", decades)
        check_fraction("familiar_cap", familiar_cap)
        if familiar_count < 0:
            raise InputError(f"must be >= 0 (0 = off), got {familiar_count!r}", where="familiar_count")
        self.detector = detector
        self.history = int(history)
        self.short = int(short)
        self.min_history = int(min_history)
        self.min_std = min_std
        self.decades = decades
        self.familiar_count = int(familiar_count)
        self.familiar_cap = familiar_cap
        self._st: _State | None = None
        self._n = 0
        self._cache: tuple[float, float] | None = None

    def _state(self) -> _State:
        if self._st is None:
            base = self.detector if self.detector is not None else RobustZScore()
            h = self.history
            self._st = _State(
                base, _Prefix(self.short), _Prefix(h), _Prefix(h), _Prefix(h), _Prefix(h), _Familiar(h), _Familiar(h)
            )
        return self._st

    def _raw_one(self, x: float) -> float:
        if self._cache is not None and self._cache[0] == x:
            return self._cache[1]
        r = math.log1p(min(self._state().base.score_one(x), _RAW_CAP))
        self._cache = (x, r)
        return r

    def p_one(self, x: float) -> float:
        """Tail probability of ``x``'s recent average raw score (1.0 until warmed up)."""
        if not math.isfinite(x):
            return 1.0
        st = self._state()
        r = self._raw_one(x)
        s, k = st.raw.window(r, self.short)
        if self._n < self.min_history:
            return 1.0
        p_avg = self._familiar(s / k, self._tail(s / k, st.avg, st.avg_sq), st.avg_seen)
        # A lone spike barely moves a 10-point average; judge the point itself too and
        # pay for the second look with a factor of two.
        p_pt = self._familiar(r, self._tail(r, st.point, st.point_sq), st.point_seen)
        return min(1.0, 2.0 * min(p_avg, p_pt))

    def _familiar(self, value: float, p: float, seen: _Familiar) -> float:
        if p >= self.familiar_cap or self.familiar_count == 0:
            return p
        cnt = seen.at_least(value)
        if cnt < self.familiar_count:
            return p
        return max(p, min((1 + cnt) / (len(seen.order) + 1), self.familiar_cap))

    def _tail(self, value: float, sums: _Prefix, squares: _Prefix) -> float:
        h = len(sums.sums) - 1
        mean = (sums.sums[-1] - sums.sums[0]) / h
        var = (squares.sums[-1] - squares.sums[0]) / h - mean * mean
        std = max(math.sqrt(max(var, 0.0)), self.min_std)
        return 0.5 * math.erfc((value - mean) / std / math.sqrt(2.0))

    def score_one(self, x: float) -> float:
        """Calibrated likelihood score in [0, 1]."""
        return p_to_score(self.p_one(x), self.decades)

    def learn_one(self, x: float) -> None:
        """Record ``x``'s raw score and averages, then let the base detector learn it."""
        if not math.isfinite(x):
            return
        st = self._state()
        r = self._raw_one(x)
        s, k = st.raw.window(r, self.short)
        avg = s / k
        for prefix, v in ((st.raw, r), (st.avg, avg), (st.avg_sq, avg * avg), (st.point, r), (st.point_sq, r * r)):
            prefix.sums.append(prefix.sums[-1] + v)
        st.avg_seen.push(avg)
        st.point_seen.push(r)
        self._n += 1
        self._cache = None
        st.base.learn_one(x)

    def p_many(self, good: FloatArray) -> FloatArray:
        """Tail probabilities for finite values, learning them (the batch path)."""
        st = self._state()
        self._cache = None
        m = good.shape[0]
        if m == 0:
            return np.ones(0)
        r = np.log1p(np.minimum(st.base.score_many(good), _RAW_CAP))
        h0 = len(st.raw.sums)
        allr = st.raw.extend(r)
        ends = h0 + np.arange(m)
        k = np.minimum(self.short, ends)
        avg = (allr[ends] - allr[ends - k]) / k
        p_avg = self._familiar_many(avg, self._tails(avg, st.avg, st.avg_sq), st.avg_seen)
        p_pt = self._familiar_many(r, self._tails(r, st.point, st.point_sq), st.point_seen)
        p = np.minimum(1.0, 2.0 * np.minimum(p_avg, p_pt))
        counts = self._n + np.arange(m)
        self._n += m
        return np.where(counts < self.min_history, 1.0, p)

    def _tails(self, values: FloatArray, sums: _Prefix, squares: _Prefix) -> FloatArray:
        """Gaussian upper tail of each value against the history before it; learns them."""
        a0 = len(sums.sums)
        alla = sums.extend(values)
        allq = squares.extend(values * values)
        # History before point j: prefix indices [a0 - 1 + j - h, a0 - 1 + j].
        last = a0 - 1 + np.arange(values.shape[0])
        h = np.minimum(self.history, last)
        safe_h = np.maximum(h, 1)
        mean = (alla[last] - alla[last - h]) / safe_h
        var = (allq[last] - allq[last - h]) / safe_h - mean * mean
        std = np.maximum(np.sqrt(np.maximum(var, 0.0)), self.min_std)
        return np.asarray(ndtr(-(values - mean) / std), dtype=np.float64)

    def _familiar_many(self, values: FloatArray, p: FloatArray, seen: _Familiar) -> FloatArray:
        """Batch twin of :meth:`_familiar`; only the rare candidates are counted."""
        out = p.copy()
        if self.familiar_count > 0:
            idx = np.flatnonzero(p < self.familiar_cap)
            cnt, width = seen.counts(values, idx)
            hit = cnt >= self.familiar_count
            freq = np.minimum((1 + cnt[hit]) / (width[hit] + 1), self.familiar_cap)
            out[idx[hit]] = np.maximum(p[idx[hit]], freq)
        seen.extend(values)
        return out

    def score_many(self, xs: npt.ArrayLike) -> FloatArray:
        """Vectorised score-then-learn."""
        vals, ok = sanitize_batch(xs)
        p = self.p_many(vals[ok])
        out = np.zeros(vals.shape[0])
        out[ok] = np.clip(-np.log10(np.maximum(p, _P_FLOOR)) / self.decades, 0.0, 1.0)
        return finish_scores(out)
