"""Exponentially weighted mean and variance, streaming and vectorised, with one definition.

Update for a learned value ``x`` with weight ``a = max(alpha, 1/(n+1))``::

    d = x - mean;  mean += a·d;  var = (1 - a)·(var + a·d²)

While ``1/(n+1) > alpha`` this is exactly the running mean and population variance, so a
slow detector (alpha = 0.005) starts from a real estimate instead of from its first value
with zero spread. After that both recursions are linear filters once ``mean`` is known,
so the batch path runs them through ``scipy.signal.lfilter`` and reproduces the streaming
values to rounding error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.signal import lfilter

from novacron.detectors.base import FloatArray

__all__ = ["EWState", "ew_batch", "ew_update"]


@dataclass(slots=True)
class EWState:
    """Exponentially weighted mean/variance and how many values they have seen."""

    n: int = 0
    mean: float = 0.0
    var: float = 0.0


def ew_update(s: EWState, x: float, alpha: float) -> None:
    """Learn one finite value."""
    n = s.n
    a = alpha if alpha * (n + 1) >= 1.0 else 1.0 / (n + 1)
    d = x - s.mean
    s.mean += a * d
    s.var = (1.0 - a) * (s.var + a * d * d)
    s.n = n + 1


def _warm_count(alpha: float) -> int:
    """How many values are learned with the running-average weight 1/(n+1) > alpha."""
    return max(0, math.ceil(1.0 / alpha) - 1)


def _running(x: FloatArray, state: EWState) -> tuple[FloatArray, FloatArray]:
    """Running mean/variance after each value, continuing ``state`` (closed form)."""
    n0 = state.n
    c = state.mean if n0 > 0 else float(x[0])
    s1 = n0 * (state.mean - c) + np.cumsum(x - c)
    s2 = n0 * (state.var + (state.mean - c) ** 2) + np.cumsum((x - c) ** 2)
    n = n0 + np.arange(1, x.shape[0] + 1)
    mean = s1 / n
    return c + mean, np.maximum(s2 / n - mean * mean, 0.0)


def ew_batch(x: FloatArray, alpha: float, state: EWState) -> tuple[FloatArray, FloatArray]:
    """Mean and variance *before* each value of ``x`` is learned; ``state`` ends updated.

    Before anything was learned the "previous" mean is ``x[0]`` and the variance 0; the
    callers treat those points as warm-up through the count.
    """
    m = x.shape[0]
    if m == 0:
        return np.empty(0), np.empty(0)
    mean0 = state.mean if state.n > 0 else float(x[0])
    var0 = state.var if state.n > 0 else 0.0
    k = min(m, max(0, _warm_count(alpha) - state.n))
    means = np.empty(m)
    var = np.empty(m)
    if k:
        means[:k], var[:k] = _running(x[:k], state)
    if k < m:
        a = alpha
        mu_k = float(means[k - 1]) if k else mean0
        v_k = float(var[k - 1]) if k else var0
        means[k:] = lfilter([a], [1.0, -(1.0 - a)], x[k:], zi=[(1.0 - a) * mu_k])[0]
        prev = np.concatenate([[mu_k], means[k:-1]])
        d2 = (x[k:] - prev) ** 2
        var[k:] = lfilter([(1.0 - a) * a], [1.0, -(1.0 - a)], d2, zi=[(1.0 - a) * v_k])[0]
    prev_mean = np.concatenate([[mean0], means[:-1]])
    prev_var = np.concatenate([[var0], var[:-1]])
    state.n += m
    state.mean = float(means[-1])
    state.var = float(var[-1])
    return prev_mean, prev_var
