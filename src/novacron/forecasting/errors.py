"""Forecasting's input errors and the shared history checks that raise them."""

from __future__ import annotations

import numpy as np

from novacron.errors import InputError, NotEnoughDataError
from novacron.forecasting._stats import FloatArray

__all__ = ["AlreadyExhaustedError", "check_history"]


class AlreadyExhaustedError(InputError):
    """Usage already meets or exceeds the limit or capacity: there is nothing to forecast."""


def check_history(t: FloatArray, y: FloatArray, limit: float | None, *, min_points: int) -> None:
    """Reject histories no forecast can be honest about.

    Raises :class:`~novacron.errors.NotEnoughDataError` for fewer than ``min_points``
    points and :class:`~novacron.errors.InputError` (naming the index) for mismatched
    lengths, non-finite or negative values, times that do not increase, or a
    non-positive limit.
    """
    if t.shape != y.shape or t.ndim != 1:
        raise InputError(f"times and values differ in shape: {t.shape} vs {y.shape}", where="history")
    if t.size < min_points:
        raise NotEnoughDataError(f"not enough history: need {min_points} points, got {t.size}")
    bad = np.flatnonzero(~np.isfinite(y) | ~np.isfinite(t))
    if bad.size:
        raise InputError("value is not a finite number", where=f"point {int(bad[0])}")
    negative = np.flatnonzero(y < 0)
    if negative.size:
        i = int(negative[0])
        raise InputError(f"impossible negative value {y[i]:g}", where=f"point {i}")
    back = np.flatnonzero(np.diff(t) <= 0)
    if back.size:
        i = int(back[0]) + 1
        raise InputError("time does not increase", where=f"point {i}")
    if limit is not None and not (np.isfinite(limit) and limit > 0):
        raise InputError(f"must be a positive number, got {limit:g}", where="limit")
