"""Choosing one point of a Pareto front by weights (the seed's 0.4 / 0.3 / 0.3 is one such choice)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from novacron.errors import InputError

__all__ = ["pick_weighted"]


def pick_weighted(f: npt.ArrayLike, weights: Sequence[float]) -> int:
    """Index of the front row with the lowest weighted sum of min-max normalised objectives."""
    arr = np.asarray(f, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise InputError("the front is empty", where="front")
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (arr.shape[1],) or (w < 0).any() or w.sum() <= 0:
        raise InputError(f"need {arr.shape[1]} non-negative weights, not all zero", where="weights")
    lo, hi = arr.min(axis=0), arr.max(axis=0)
    norm = (arr - lo) / np.where(hi > lo, hi - lo, 1.0)
    return int(np.argmin(norm @ (w / w.sum())))
