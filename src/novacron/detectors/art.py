"""Adaptive-resonance novelty, in the manner of ARTime (NAB's leading detector).

The last ``window`` values are averaged down to ``features`` points, scaled into [0, 1]
by the range seen so far and complement-coded. A fuzzy ART network (Carpenter, Grossberg
& Rosen, 1991) keeps categories of such shapes: the category that best matches the input
(choice ``|I ∧ w| / (choice + |w|)``) *resonates* if its match ``|I ∧ w| / |I|`` reaches
the vigilance ``rho``, and then learns it (``w ← lr·(I ∧ w) + (1 - lr)·w``); otherwise the
input founds a new category. The score is how far the best match falls short of a
perfect one, scaled by the vigilance gap: ``(1 - match) / (1 - rho)`` clipped to [0, 1],
so 1 means "a shape no category resonates with".

Once ``max_categories`` exist, a non-resonating input refines the closest category
instead of founding one, which bounds memory and time per value.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from novacron.detectors.base import Detector, FloatArray, check_fraction, check_positive, clip_value, register
from novacron.errors import InputError

__all__ = ["ARTNovelty"]


@register("art")
class ARTNovelty(Detector):
    """Fuzzy-ART novelty of the recent shape, in [0, 1]."""

    default_threshold = 1.0
    unit_interval = True

    def __init__(
        self,
        *,
        window: int = 16,
        features: int = 8,
        rho: float = 0.85,
        lr: float = 0.1,
        choice: float = 0.01,
        max_categories: int = 200,
        min_history: int = 100,
    ) -> None:
        check_positive("window", window)
        check_positive("features", features)
        check_fraction("rho", rho)
        check_fraction("lr", lr)
        check_positive("choice", choice)
        check_positive("max_categories", max_categories)
        check_positive("min_history", min_history)
        if features > window:
            raise InputError(f"must not exceed window ({window}), got {features!r}", where="features")
        self.window = int(window)
        self.features = int(features)
        self.rho = rho
        self.lr = lr
        self.choice = choice
        self.max_categories = int(max_categories)
        self.min_history = int(min_history)
        self._values: deque[float] = deque(maxlen=self.window)
        self._weights: FloatArray = np.empty((0, 2 * self.features))
        self._lo = math.inf
        self._hi = -math.inf
        self._n = 0
        self._cache: tuple[float, tuple[FloatArray, int, float] | None] | None = None

    def _input(self, x: float) -> FloatArray | None:
        if len(self._values) < self.window - 1 or self._hi <= self._lo:
            return None
        vals = np.append(np.asarray(self._values, dtype=np.float64)[1 - self.window :], x)
        lo, hi = min(self._lo, x), max(self._hi, x)
        scaled = (vals - lo) / (hi - lo)
        feats = (
            scaled.reshape(self.features, -1).mean(axis=1)
            if self.window % self.features == 0
            else scaled[-self.features :]
        )
        return np.concatenate([feats, 1.0 - feats])

    def _resonance(self, x: float) -> tuple[FloatArray, int, float] | None:
        """(input, best category or -1, its match) for the shape ending at ``x``."""
        if self._cache is not None and self._cache[0] == x:
            return self._cache[1]
        out: tuple[FloatArray, int, float] | None = None
        inp = self._input(x)
        if inp is not None:
            if self._weights.shape[0] == 0:
                out = (inp, -1, 0.0)
            else:
                inter = np.minimum(self._weights, inp).sum(axis=1)
                best = int(np.argmax(inter / (self.choice + self._weights.sum(axis=1))))
                out = (inp, best, float(inter[best] / inp.sum()))
        self._cache = (x, out)
        return out

    def score_one(self, x: float) -> float:
        """Shortfall of the best category's match, scaled by the vigilance gap."""
        if not math.isfinite(x) or self._n < self.min_history:
            return 0.0
        res = self._resonance(clip_value(x))
        if res is None:
            return 0.0
        return min(1.0, max(0.0, (1.0 - res[2]) / (1.0 - self.rho))) if self.rho < 1.0 else float(res[2] < 1.0)

    def learn_one(self, x: float) -> None:
        """Resonate and learn, or found a new category."""
        if not math.isfinite(x):
            return
        x = clip_value(x)
        res = self._resonance(x)
        if res is not None:
            inp, best, match = res
            if best >= 0 and (match >= self.rho or self._weights.shape[0] >= self.max_categories):
                w = self._weights[best]
                self._weights[best] = self.lr * np.minimum(w, inp) + (1.0 - self.lr) * w
            else:
                self._weights = np.vstack([self._weights, inp])
        self._values.append(x)
        self._lo, self._hi = min(self._lo, x), max(self._hi, x)
        self._n += 1
        self._cache = None
