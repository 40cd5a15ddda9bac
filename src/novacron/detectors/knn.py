"""Contextual k-nearest-neighbour conformal detector, after KNN-CAD (Burnaev & Ishimtsev, 2016).

Each value is judged with its context: the vector of the last ``dim`` values ending at it.
Its nonconformity is the mean distance to the ``k`` nearest contexts among the last
``train`` ones (contexts that overlap it are left out, so a value is never its own
neighbour); the conformal p-value is the share of the last ``calibration``
nonconformities at least as large. A pattern the series has shown before — a daily
spike, a weekly dip — has near neighbours and scores low; a new shape scores high
whatever its magnitude.

The score is ``-log10(p) / log10(calibration + 1)`` in [0, 1]: 1 when the context is
stranger than every one in the calibration window.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from novacron.detectors.base import Detector, FloatArray, check_positive, clip_value, register

__all__ = ["KNNConformal"]


@register("knn_cad")
class KNNConformal(Detector):
    """Conformal k-NN novelty of each value's context, in [0, 1]."""

    default_threshold = 0.9
    unit_interval = True

    def __init__(self, *, dim: int = 10, train: int = 300, k: int = 5, calibration: int = 300) -> None:
        check_positive("dim", dim)
        check_positive("train", train)
        check_positive("k", k)
        check_positive("calibration", calibration)
        self.dim = int(dim)
        self.train = int(train)
        self.k = int(k)
        self.calibration = int(calibration)
        self._recent: deque[float] = deque(maxlen=self.dim)
        self._contexts: deque[FloatArray] = deque(maxlen=self.train + self.dim)
        self._alphas: deque[float] = deque(maxlen=self.calibration)
        self._cache: tuple[float, float | None] | None = None

    def _alpha(self, x: float) -> float | None:
        """Nonconformity of the context ending at ``x`` (None until enough history)."""
        if self._cache is not None and self._cache[0] == x:
            return self._cache[1]
        alpha: float | None = None
        if len(self._recent) == self.dim:
            usable = len(self._contexts) - self.dim  # the newest ``dim`` overlap this context
            if usable >= self.k:
                ctx = np.append(np.asarray(self._recent, dtype=np.float64)[1:], x)
                past = np.asarray(list(self._contexts)[:usable])
                dist = np.sqrt(np.sum((past - ctx) ** 2, axis=1))
                alpha = float(np.partition(dist, self.k - 1)[: self.k].mean())
        self._cache = (x, alpha)
        return alpha

    def p_one(self, x: float) -> float:
        """Conformal p-value of ``x``'s context (1.0 until calibrated)."""
        if not math.isfinite(x):
            return 1.0
        alpha = self._alpha(clip_value(x))
        if alpha is None or len(self._alphas) < self.k:
            return 1.0
        cal = np.asarray(self._alphas)
        return float((1 + np.count_nonzero(cal >= alpha)) / (cal.shape[0] + 1))

    def score_one(self, x: float) -> float:
        """Novelty of ``x``'s context in [0, 1]."""
        p = self.p_one(x)
        return min(1.0, -math.log10(p) / math.log10(self.calibration + 1))

    def learn_one(self, x: float) -> None:
        """Remember the context ending at ``x`` and its nonconformity."""
        if not math.isfinite(x):
            return
        x = clip_value(x)
        alpha = self._alpha(x)
        if alpha is not None:
            self._alphas.append(alpha)
        self._recent.append(x)
        if len(self._recent) == self.dim:
            self._contexts.append(np.asarray(self._recent, dtype=np.float64))
        self._cache = None
