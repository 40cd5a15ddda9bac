"""Test helpers: registered detectors built small enough to keep tests fast, sample data."""

from __future__ import annotations

from typing import Any

import numpy as np

from novacron.detectors import REGISTRY
from novacron.detectors.base import Detector

# Small settings where a default would make the suite slow (forests) or never warm up.
SMALL: dict[str, dict[str, Any]] = {
    "iforest": {"min_train": 40, "refit_every": 60, "n_estimators": 8, "max_samples": 32, "window": 4},
    "holt_winters": {"period_daily": 24, "period_weekly": 168},
    "likelihood": {"history": 200, "min_history": 20},
    "ensemble": {"history": 200, "min_history": 20},
    "knn_cad": {"dim": 4, "train": 40, "k": 3, "calibration": 30},
    "art": {"window": 8, "features": 4, "min_history": 20},
    "spectral_residual": {"window": 16, "local": 5},
    "rank": {"history": 100, "min_history": 20},
    "lstm": {"lookback": 4, "hidden": 4, "train_size": 100, "min_train": 40, "refit_every": 60, "epochs": 1},
}


def make(name: str) -> Detector:
    """A fresh registered detector with test-sized parameters."""
    return REGISTRY.create(name, **SMALL.get(name, {}))


def sample_series(n: int = 600, seed: int = 3) -> np.ndarray:
    """Seasonal noise with a spike, a gap, a flat stretch, a level shift and huge values."""
    rng = np.random.default_rng(seed)
    x = 50 + 5 * np.sin(np.arange(n) * 2 * np.pi / 24) + rng.normal(0, 1, n)
    x[n // 6] += 40
    x[n // 4 : n // 4 + 15] = np.nan
    x[n // 3 : n // 3 + 60] = 42.0
    x[n // 2 :] += 15
    x[-20] = 1e300
    x[-10] = -np.inf
    return x
