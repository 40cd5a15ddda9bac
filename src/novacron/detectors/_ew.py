"""Exponentially weighted mean and variance, streaming and vectorised, with one definition.

Streaming update for a learned value ``x`` (the first value seeds ``mean``)::

    d = x - mean;  mean += a·d;  var = (1 - a)·(var + a·d²)

Both recursions are linear filters once ``mean`` is known, so the batch path runs them
through ``scipy.signal.lfilter`` and reproduces the streaming values to rounding error.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import lfilter

from novacron.detectors.base import FloatArray

__all__ = ["EWState", "ew_batch"]


@dataclass(slots=True)
class EWState:
    """Exponentially weighted mean/variance and how many values they have seen."""

    n: int = 0
    mean: float = 0.0
    var: float = 0.0


def ew_batch(x: FloatArray, a: float, state: EWState) -> tuple[FloatArray, FloatArray]:
    """Mean and variance *before* each value of ``x`` is learned; ``state`` ends updated.

    Values scored before the first one was ever learned see ``mean = x[0]``, ``var = 0``,
    which the callers treat as "not warmed up" through the count.
    """
    m = x.shape[0]
    if m == 0:
        return np.empty(0), np.empty(0)
    mean0 = state.mean if state.n > 0 else float(x[0])
    var0 = state.var if state.n > 0 else 0.0
    means = lfilter([a], [1.0, -(1.0 - a)], x, zi=[(1.0 - a) * mean0])[0]
    prev_mean = np.empty(m)
    prev_mean[0] = mean0
    prev_mean[1:] = means[:-1]
    d2 = (x - prev_mean) ** 2
    var = lfilter([(1.0 - a) * a], [1.0, -(1.0 - a)], d2, zi=[(1.0 - a) * var0])[0]
    prev_var = np.empty(m)
    prev_var[0] = var0
    prev_var[1:] = var[:-1]
    state.n += m
    state.mean = float(means[-1])
    state.var = float(var[-1])
    return prev_mean, prev_var
