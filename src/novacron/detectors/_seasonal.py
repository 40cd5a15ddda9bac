"""Per-phase exponential smoothing (a seasonal profile), vectorised over whole seasons.

Streaming rule for a value ``e`` at phase ``c``: ``D[c] = e`` on the first visit, else
``D[c] += gamma·(e - D[c])``. Laying the batch out as a (seasons × period) matrix turns
this into one ``lfilter`` down the columns.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import lfilter

from novacron.detectors.base import FloatArray

__all__ = ["phase_smooth"]


def phase_smooth(e: FloatArray, t0: int, gamma: float, profile: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Profile value *before* each point's update (NaN = phase not seen yet), and the final profile.

    ``e[j]`` sits at phase ``(t0 + j) % len(profile)``; ``profile`` (NaN = unvisited) is
    the state before ``e[0]`` and is not modified.
    """
    period = profile.shape[0]
    m = e.shape[0]
    off = t0 % period
    rows = -(-(off + m) // period)
    grid = np.full(rows * period, np.nan)
    grid[off : off + m] = e
    grid = grid.reshape(rows, period)
    real = np.zeros(rows * period, dtype=bool)
    real[off : off + m] = True
    real = real.reshape(rows, period)
    seen = ~np.isnan(profile)
    first_row = np.argmax(real, axis=0)  # first real row per column (0 if none)
    has_real = real.any(axis=0)
    cols = np.arange(period)
    # Unvisited columns start from their first value, which makes the first update yield it.
    start = np.where(seen, profile, grid[first_row, cols])
    # Padding before the batch must leave the state alone: fill it with the state itself.
    pad_front = ~real[0] & (cols < off)
    grid[0, pad_front] = start[pad_front]
    after = lfilter([gamma], [1.0, -(1.0 - gamma)], grid, axis=0, zi=((1.0 - gamma) * start)[None, :])[0]
    before = np.vstack([profile[None, :], after[:-1]])
    unseen_first = ~seen & has_real
    before[first_row[unseen_first], cols[unseen_first]] = np.nan
    last_row = np.where(real[-1], rows - 1, rows - 2)
    final = np.where(has_real, after[np.maximum(last_row, 0), cols], profile)
    return before.reshape(-1)[off : off + m], final
