"""Calibration: raw scores → anomaly likelihood (a tail probability), and the ensemble.

Raw scores from different detectors live on different scales; an operator needs one that
means the same thing everywhere. Following Numenta's anomaly likelihood (Ahmad et al.,
2017), the short-term average of a detector's recent raw scores is compared with the
distribution of that average over a long history; the Gaussian tail probability ``p`` of
the current average is the calibrated output, reported as ``-log10(p) / decades`` clipped
to [0, 1] (so 0.5 with ``decades=10`` means p = 1e-5).

Raw scores are compressed with ``log1p`` first: z-like scores are heavy-tailed and the
Gaussian model of their average fits far better on a log scale.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np
import numpy.typing as npt
from scipy.special import ndtr

from novacron.detectors.base import (
    Detector,
    FloatArray,
    check_positive,
    finish_scores,
    register,
    sanitize_batch,
)
from novacron.detectors.robust import RobustZScore

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
        self.sums.extend(allp[hist.shape[0] :].tolist())
        return allp


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
    ) -> None:
        check_positive("history", history)
        check_positive("short", short)
        check_positive("min_history", min_history)
        check_positive("min_std", min_std)
        check_positive("decades", decades)
        self.detector = detector
        self.history = int(history)
        self.short = int(short)
        self.min_history = int(min_history)
        self.min_std = min_std
        self.decades = decades
        self._base: Detector | None = None
        self._raw: _Prefix | None = None
        self._avg: _Prefix | None = None
        self._sq: _Prefix | None = None
        self._pt: _Prefix | None = None
        self._pt_sq: _Prefix | None = None
        self._n = 0
        self._cache: tuple[float, float] | None = None

    def _state(self) -> tuple[Detector, _Prefix, _Prefix, _Prefix]:
        if self._base is None or self._raw is None or self._avg is None or self._sq is None:
            self._base = self.detector if self.detector is not None else RobustZScore()
            self._raw = _Prefix(self.short)
            self._avg = _Prefix(self.history)
            self._sq = _Prefix(self.history)
            self._pt = _Prefix(self.history)
            self._pt_sq = _Prefix(self.history)
        return self._base, self._raw, self._avg, self._sq

    def _points(self) -> tuple[_Prefix, _Prefix]:
        self._state()
        assert self._pt is not None and self._pt_sq is not None
        return self._pt, self._pt_sq

    def _raw_one(self, x: float) -> float:
        if self._cache is not None and self._cache[0] == x:
            return self._cache[1]
        base = self._state()[0]
        r = math.log1p(min(base.score_one(x), _RAW_CAP))
        self._cache = (x, r)
        return r

    def p_one(self, x: float) -> float:
        """Tail probability of ``x``'s recent average raw score (1.0 until warmed up)."""
        if not math.isfinite(x):
            return 1.0
        _, raw, avg_p, sq_p = self._state()
        s, k = raw.window(self._raw_one(x), self.short)
        if self._n < self.min_history:
            return 1.0
        p_avg = self._tail(s / k, avg_p, sq_p)
        # A lone spike barely moves a 10-point average; judge the point itself too and
        # pay for the second look with a factor of two.
        pt, pt_sq = self._points()
        p_pt = self._tail(self._raw_one(x), pt, pt_sq)
        return min(1.0, 2.0 * min(p_avg, p_pt))

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
        base, raw, avg_p, sq_p = self._state()
        r = self._raw_one(x)
        s, k = raw.window(r, self.short)
        raw.sums.append(raw.sums[-1] + r)
        avg = s / k
        avg_p.sums.append(avg_p.sums[-1] + avg)
        sq_p.sums.append(sq_p.sums[-1] + avg * avg)
        pt, pt_sq = self._points()
        pt.sums.append(pt.sums[-1] + r)
        pt_sq.sums.append(pt_sq.sums[-1] + r * r)
        self._n += 1
        self._cache = None
        base.learn_one(x)

    def p_many(self, good: FloatArray) -> FloatArray:
        """Tail probabilities for finite values, learning them (the batch path)."""
        base, raw, avg_p, sq_p = self._state()
        self._cache = None
        m = good.shape[0]
        if m == 0:
            return np.ones(0)
        r = np.log1p(np.minimum(base.score_many(good), _RAW_CAP))
        h0 = len(raw.sums)
        allr = raw.extend(r)
        ends = h0 + np.arange(m)
        k = np.minimum(self.short, ends)
        avg = (allr[ends] - allr[ends - k]) / k
        p_avg = self._tails(avg, avg_p, sq_p)
        p_pt = self._tails(r, *self._points())
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

    def score_many(self, xs: npt.ArrayLike) -> FloatArray:
        """Vectorised score-then-learn."""
        vals, ok = sanitize_batch(xs)
        p = self.p_many(vals[ok])
        out = np.zeros(vals.shape[0])
        out[ok] = np.clip(-np.log10(np.maximum(p, _P_FLOOR)) / self.decades, 0.0, 1.0)
        return finish_scores(out)
