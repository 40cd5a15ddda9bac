"""Phi-accrual under the detector contract: the one implementation in ``phi.py``, guarded.

``x`` is a heartbeat arrival time (seconds). ``score_one(t)`` is the suspicion level at
time ``t`` before ``t`` is counted as a heartbeat; ``learn_one(t)`` records the heartbeat.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from novacron.detectors.base import (
    Detector,
    FloatArray,
    clip_value,
    finish_score,
    finish_scores,
    register,
    sanitize_batch,
)
from novacron.detectors.phi import PhiAccrual

__all__ = ["PhiAccrualDetector"]


@register("phi_accrual")
class PhiAccrualDetector(PhiAccrual, Detector):
    """:class:`PhiAccrual` as a registered detector; non-finite times are ignored."""

    # The constructor is PhiAccrual's: the same keyword-only parameters, so get_params and
    # clone introspect it as they do any detector's.
    default_threshold = 8.0

    def learn_one(self, x: float) -> None:
        """Record a heartbeat at time ``x``; NaN/inf are not heartbeats."""
        if math.isfinite(x):
            self.heartbeat(clip_value(x))

    def score_one(self, x: float) -> float:
        """Suspicion level (phi) at time ``x``."""
        if not math.isfinite(x):
            return 0.0
        return finish_score(self.phi(clip_value(x)))

    def score_many(self, xs: npt.ArrayLike) -> FloatArray:
        """Vectorised score-then-learn: phi at each time from the heartbeats before it."""
        vals, ok = sanitize_batch(xs)
        t = vals[ok]
        out = np.zeros(vals.shape[0])
        if t.shape[0] == 0:
            return out
        intervals = self._state()
        last = self._last
        first = last is None
        start = float(t[0]) if last is None else last
        # The latest heartbeat before each point is the running maximum of arrival times.
        latest = np.maximum.accumulate(np.concatenate([[start], t]))
        gaps = np.diff(latest)
        pushed = gaps[gaps > 0]
        hist = np.asarray(intervals, dtype=np.float64)
        seq = np.concatenate([hist, pushed])
        pre = np.concatenate([[0.0], np.cumsum(seq)])
        pre_sq = np.concatenate([[0.0], np.cumsum(seq * seq)])
        # Intervals known before point j: the history plus pushes at points < j.
        known = hist.shape[0] + np.concatenate([[0], np.cumsum(gaps > 0)[:-1]])
        n = np.minimum(known, self.window)
        mean = (pre[known] - pre[known - n]) / n
        var = np.maximum(0.0, (pre_sq[known] - pre_sq[known - n]) / n - mean * mean)
        phi = self._phi_many(t - latest[:-1], mean, np.maximum(np.sqrt(var), self.min_std_s))
        if first:
            phi[0] = 0.0  # no heartbeat had arrived yet
        out[ok] = phi
        keep = seq[-self.window :]
        intervals.clear()
        intervals.extend(keep.tolist())
        self._sum, self._sq = float(keep.sum()), float((keep * keep).sum())
        self._last = float(latest[-1])
        return finish_scores(out)

    def _phi_many(self, elapsed: FloatArray, mean: FloatArray, std: FloatArray) -> FloatArray:
        """The formula of :meth:`PhiAccrual.phi`, element-wise."""
        elapsed = np.maximum(elapsed, 0.0)
        late = elapsed > mean + self.acceptable_pause_s
        y = (elapsed - (mean + self.acceptable_pause_s)) / std
        with np.errstate(over="ignore", invalid="ignore"):
            e = np.where(y > -30, np.exp(-y * (1.5976 + 0.070566 * y * y)), np.inf)
            p_later = np.where(late, e / (1.0 + e), 1.0 - 1.0 / (1.0 + e))
        with np.errstate(divide="ignore"):
            phi = np.where(p_later <= 0.0, 1_000.0, -np.log10(np.maximum(p_later, 0.0)))
        return np.asarray(np.clip(np.nan_to_num(phi, nan=0.0), 0.0, 1_000.0), dtype=np.float64)
