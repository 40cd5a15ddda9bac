"""Change-point detectors: two-sided CUSUM and Page-Hinkley on standardised values.

Both accumulate evidence of a sustained shift, so they catch slow creeps (a leak, a
latency drift) that a point-wise z-score misses. Both statistics follow Lindley's
recursion ``S = max(0, S + w)``, whose closed form ``C_t - min(0, min_j C_j)`` over the
running sum ``C`` lets the batch path run as cumulative sums.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from scipy.signal import lfilter

from novacron.detectors._ew import EWState, ew_batch, ew_update
from novacron.detectors.base import (
    Detector,
    FloatArray,
    check_fraction,
    check_positive,
    clip_value,
    finish_score,
    finish_scores,
    register,
    sanitize_batch,
)
from novacron.errors import InputError

__all__ = ["CUSUM", "PageHinkley"]

_SIDES = ("both", "up", "down")


def _lindley(w: FloatArray, s0: float) -> FloatArray:
    """``S_t = max(0, S_{t-1} + w_t)`` for all t, from ``S_0 = s0``, without a loop."""
    c = s0 + np.cumsum(w)
    return c - np.minimum(0.0, np.minimum.accumulate(c))


def _combine(up: float, down: float, side: str) -> float:
    if side == "up":
        return up
    if side == "down":
        return down
    return max(up, down)


@register("cusum")
class CUSUM(Detector):
    """Two-sided CUSUM of values standardised by an exponentially weighted mean and std.

    ``k`` is the allowance (shifts smaller than k std are ignored); z-values are clipped to
    ``±z_clip`` so one wild outlier cannot hold the statistic high for hours.
    """

    default_threshold = 8.0

    def __init__(
        self,
        *,
        alpha: float = 0.01,
        k: float = 0.5,
        z_clip: float = 6.0,
        warmup: int = 30,
        min_scale: float = 1e-9,
        rel_scale: float = 1e-3,
        side: str = "both",
    ) -> None:
        check_fraction("alpha", alpha)
        check_positive("k", k)
        check_positive("z_clip", z_clip)
        check_positive("warmup", warmup)
        check_positive("min_scale", min_scale)
        if side not in _SIDES:
            raise InputError(f"must be one of {_SIDES}, got {side!r}", where="side")
        self.alpha = alpha
        self.k = k
        self.z_clip = z_clip
        self.warmup = int(warmup)
        self.min_scale = min_scale
        self.rel_scale = rel_scale
        self.side = side
        self._s = EWState()
        self._up = 0.0
        self._down = 0.0

    def _z(self, x: float) -> float:
        s = self._s
        if s.n < self.warmup:
            return 0.0
        scale = max(math.sqrt(s.var), self.min_scale, self.rel_scale * abs(s.mean))
        z = (x - s.mean) / scale
        return max(-self.z_clip, min(self.z_clip, z))

    def learn_one(self, x: float) -> None:
        """Advance both cumulative sums with ``x``, then fold it into the mean/std."""
        if not math.isfinite(x):
            return
        x = clip_value(x)
        z = self._z(x)
        self._up = max(0.0, self._up + z - self.k)
        self._down = max(0.0, self._down - z - self.k)
        ew_update(self._s, x, self.alpha)

    def score_one(self, x: float) -> float:
        """The CUSUM statistic as it would stand after ``x``."""
        if not math.isfinite(x):
            return 0.0
        z = self._z(clip_value(x))
        up = max(0.0, self._up + z - self.k)
        down = max(0.0, self._down - z - self.k)
        return finish_score(_combine(up, down, self.side))

    def score_many(self, xs: npt.ArrayLike) -> FloatArray:
        """Vectorised score-then-learn."""
        vals, ok = sanitize_batch(xs)
        good = vals[ok]
        n0 = self._s.n
        mean, var = ew_batch(good, self.alpha, self._s)
        scale = np.maximum(np.sqrt(var), np.maximum(self.min_scale, self.rel_scale * np.abs(mean)))
        z = np.clip((good - mean) / scale, -self.z_clip, self.z_clip)
        z[(n0 + np.arange(good.shape[0])) < self.warmup] = 0.0
        up = _lindley(z - self.k, self._up)
        down = _lindley(-z - self.k, self._down)
        if good.shape[0]:
            self._up, self._down = float(up[-1]), float(down[-1])
        stat = up if self.side == "up" else down if self.side == "down" else np.maximum(up, down)
        out = np.zeros(vals.shape[0])
        out[ok] = stat
        return finish_scores(out)


@register("page_hinkley")
class PageHinkley(Detector):
    """Page-Hinkley test (as in river) on values scaled by their running std.

    ``m_t = fading·m_{t-1} + (x_t - mean_t)/std - delta`` accumulates deviations from the
    whole-history mean; the score is ``m_t - min_j m_j`` (and its mirror for decreases).
    """

    default_threshold = 50.0

    def __init__(
        self,
        *,
        delta: float = 0.05,
        fading: float = 0.999,
        warmup: int = 30,
        min_scale: float = 1e-9,
        rel_scale: float = 1e-3,
        side: str = "both",
    ) -> None:
        check_positive("delta", delta)
        check_fraction("fading", fading)
        check_positive("warmup", warmup)
        check_positive("min_scale", min_scale)
        if side not in _SIDES:
            raise InputError(f"must be one of {_SIDES}, got {side!r}", where="side")
        self.delta = delta
        self.fading = fading
        self.warmup = int(warmup)
        self.min_scale = min_scale
        self.rel_scale = rel_scale
        self.side = side
        # Sums are kept relative to the first value (``_shift``) so the variance formula
        # E[x²] - E[x]² does not cancel catastrophically on large offsets (bytes, ns).
        self._n = 0
        self._shift = 0.0
        self._sum = 0.0
        self._sq = 0.0
        self._m_up = 0.0
        self._min_up = 0.0
        self._m_down = 0.0
        self._min_down = 0.0

    def _step(self, x: float) -> tuple[float, float, float, float]:
        """Candidate (m_up, min_up, m_down, min_down) after ``x``."""
        n = self._n
        if n < self.warmup:
            return self._m_up, self._min_up, self._m_down, self._min_down
        mean = self._sum / n
        var = max(0.0, self._sq / n - mean * mean)
        centre = (self._sum + (x - self._shift)) / (n + 1)
        scale = max(math.sqrt(var), self.min_scale, self.rel_scale * abs(mean + self._shift))
        u = (x - self._shift - centre) / scale
        m_up = self.fading * self._m_up + u - self.delta
        m_down = self.fading * self._m_down - u - self.delta
        return m_up, min(self._min_up, m_up), m_down, min(self._min_down, m_down)

    def learn_one(self, x: float) -> None:
        """Advance the test statistics with ``x`` and add it to the running moments."""
        if not math.isfinite(x):
            return
        x = clip_value(x)
        if self._n == 0:
            self._shift = x
        self._m_up, self._min_up, self._m_down, self._min_down = self._step(x)
        v = x - self._shift
        self._sum += v
        self._sq += v * v
        self._n += 1

    def score_one(self, x: float) -> float:
        """The Page-Hinkley statistic as it would stand after ``x``."""
        if not math.isfinite(x):
            return 0.0
        m_up, min_up, m_down, min_down = self._step(clip_value(x))
        return finish_score(_combine(m_up - min_up, m_down - min_down, self.side))

    def score_many(self, xs: npt.ArrayLike) -> FloatArray:
        """Vectorised score-then-learn (cumulative moments, a linear filter, running minima)."""
        vals, ok = sanitize_batch(xs)
        good = vals[ok]
        m = good.shape[0]
        if m == 0:
            return np.zeros(vals.shape[0])
        n0 = self._n
        shift = self._shift if n0 > 0 else float(good[0])
        v = good - shift
        csum = self._sum + np.cumsum(v)
        csq = self._sq + np.cumsum(v * v)
        counts = n0 + np.arange(m)  # values learned before each point
        prev_sum = np.concatenate([[self._sum], csum[:-1]])
        prev_sq = np.concatenate([[self._sq], csq[:-1]])
        safe_n = np.maximum(counts, 1)
        mean = prev_sum / safe_n
        var = np.maximum(0.0, prev_sq / safe_n - mean * mean)
        scale = np.maximum(np.sqrt(var), np.maximum(self.min_scale, self.rel_scale * np.abs(mean + shift)))
        u = (v - csum / (counts + 1)) / scale
        live = counts >= self.warmup
        up = self._faded(np.where(live, u - self.delta, 0.0), live, self._m_up)
        down = self._faded(np.where(live, -u - self.delta, 0.0), live, self._m_down)
        min_up = np.minimum(self._min_up, np.minimum.accumulate(up))
        min_down = np.minimum(self._min_down, np.minimum.accumulate(down))
        self._n, self._shift = n0 + m, shift
        self._sum, self._sq = float(csum[-1]), float(csq[-1])
        self._m_up, self._min_up = float(up[-1]), float(min_up[-1])
        self._m_down, self._min_down = float(down[-1]), float(min_down[-1])
        ph_up, ph_down = up - min_up, down - min_down
        stat = ph_up if self.side == "up" else ph_down if self.side == "down" else np.maximum(ph_up, ph_down)
        out = np.zeros(vals.shape[0])
        out[ok] = np.where(live, stat, 0.0)
        return finish_scores(out)

    def _faded(self, w: FloatArray, live: npt.NDArray[np.bool_], m0: float) -> FloatArray:
        """``m_t = fading·m_{t-1} + w_t`` on live steps; warm-up steps leave ``m`` as is."""
        # Warm-up is a prefix, so the live part is one contiguous run at the end.
        out = np.full(w.shape[0], m0)
        start = int(np.argmax(live)) if live.any() else w.shape[0]
        if start < w.shape[0]:
            out[start:] = lfilter([1.0], [1.0, -self.fading], w[start:], zi=[self.fading * m0])[0]
        return out
