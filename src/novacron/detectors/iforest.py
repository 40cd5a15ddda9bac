"""Isolation Forest (Liu et al., 2008) over sliding-window features, refitted periodically.

Each point becomes a feature row from itself and the ``window`` values before it (value,
step change, distance from the window mean, window spread). The forest is fitted on the
last ``train_size`` rows every ``refit_every`` learned points; between refits it only
scores. Fitting happens at fixed learned-point counts with a seed derived from ``seed``
and the refit number, so streaming and batch runs build the very same forests, and the
batch path scores everything between two refits in one vectorised call.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from novacron.detectors.base import (
    Detector,
    FloatArray,
    RefitChunks,
    check_positive,
    clip_value,
    register,
)
from novacron.extras import require

__all__ = ["IsolationForestDetector"]

# Values are scaled down before the forest sees them: sklearn's trees work in float32,
# where the 1e100 clip limit would overflow to inf.
_FEATURE_LIMIT = 1e30


def _features(windows: FloatArray) -> FloatArray:
    """Rows ``[x, x - prev, x - mean(prev), std(prev)]`` from rows of ``window + 1`` values."""
    prev, x = windows[:, :-1], windows[:, -1]
    mean = prev.mean(axis=1)
    feats = np.column_stack([x, x - prev[:, -1], x - mean, prev.std(axis=1)])
    return np.asarray(np.clip(feats, -_FEATURE_LIMIT, _FEATURE_LIMIT), dtype=np.float64)


@register("iforest")
class IsolationForestDetector(RefitChunks, Detector):
    """Isolation Forest anomaly score (0.5 ≈ ordinary, → 1 isolated) on window features."""

    default_threshold = 0.65
    unit_interval = True

    def __init__(
        self,
        *,
        window: int = 8,
        n_estimators: int = 50,
        max_samples: int = 256,
        train_size: int = 2000,
        refit_every: int = 1000,
        min_train: int = 200,
        seed: int = 0,
    ) -> None:
        for name, v in (
            ("window", window),
            ("n_estimators", n_estimators),
            ("max_samples", max_samples),
            ("train_size", train_size),
            ("refit_every", refit_every),
            ("min_train", min_train),
        ):
            check_positive(name, v)
        self.window = int(window)
        self.n_estimators = int(n_estimators)
        self.max_samples = int(max_samples)
        self.train_size = int(train_size)
        self.refit_every = int(refit_every)
        self.min_train = int(min_train)
        self.seed = int(seed)
        self._hist: deque[float] | None = None
        self._rows: deque[FloatArray] | None = None
        self._model: Any = None
        self._since_fit = 0
        self._fits = 0

    def _state(self) -> tuple[deque[float], deque[FloatArray]]:
        if self._hist is None or self._rows is None:
            self._hist = deque(maxlen=self.window)
            self._rows = deque(maxlen=self.train_size)
        return self._hist, self._rows

    def _row(self, x: float) -> FloatArray | None:
        hist, _ = self._state()
        if len(hist) < self.window:
            return None
        return _features(np.array([[*hist, x]]))

    def _fit(self) -> None:
        # Heavy, and only in the `forecast` extra: imported on the first fit.
        IsolationForest = require("sklearn.ensemble", feature="the iforest detector").IsolationForest  # noqa: N806

        _, rows = self._state()
        data = np.vstack(list(rows))
        model = IsolationForest(
            n_estimators=self.n_estimators,
            max_samples=min(self.max_samples, data.shape[0]),
            random_state=self.seed * 1_000_003 + self._fits,
        )
        model.fit(data)
        self._model = model
        self._fits += 1
        self._since_fit = 0

    def _due(self) -> bool:
        _, rows = self._state()
        if self._model is None:
            return len(rows) >= self.min_train
        return self._since_fit >= self.refit_every

    def learn_one(self, x: float) -> None:
        """Add ``x``'s feature row to the training buffer; refit when due."""
        if not math.isfinite(x):
            return
        x = clip_value(x)
        hist, rows = self._state()
        row = self._row(x)
        hist.append(x)
        if row is None:
            return
        rows.append(row[0])
        self._since_fit += 1
        if self._due():
            self._fit()

    def score_one(self, x: float) -> float:
        """Isolation score of ``x`` in context (0 until the first fit)."""
        if self._model is None or not math.isfinite(x):
            return 0.0
        row = self._row(clip_value(x))
        if row is None:
            return 0.0
        return float(-self._model.score_samples(row)[0])

    def _chunk(self, good: FloatArray, i: int, scores: FloatArray) -> int:
        """Handle ``good[i:j]`` up to the next refit; return ``j``."""
        hist, rows = self._state()
        m = good.shape[0]
        if len(hist) < self.window:  # still filling the first window: one at a time
            self.learn_one(float(good[i]))
            return i + 1
        room = self.min_train - len(rows) if self._model is None else self.refit_every - self._since_fit
        j = int(min(m, i + max(room, 1)))
        seq = np.concatenate([np.asarray(hist, dtype=np.float64), good[i:j]])
        feats = _features(sliding_window_view(seq, self.window + 1))
        if self._model is not None:
            scores[i:j] = -self._model.score_samples(feats)
        hist.extend(good[i:j].tolist())
        rows.extend(list(feats))
        self._since_fit += j - i
        if self._due():
            self._fit()
        return j
