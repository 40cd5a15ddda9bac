"""Robust rolling z-score: distance from the rolling median in units of the rolling MAD."""

from __future__ import annotations

import math
from collections import deque

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

from novacron.detectors.base import (
    Detector,
    FloatArray,
    check_fraction,
    check_positive,
    clip_value,
    finish_scores,
    register,
    sanitize_batch,
)
from novacron.errors import InputError

__all__ = ["RobustZScore"]

# MAD * 1.4826 estimates the standard deviation of a normal distribution.
_MAD_TO_STD = 1.4826
# Mean absolute deviation * 1.2533 also estimates it; used as a floor when more than half
# of the window sits on one value (MAD = 0) but the rest still varies.
_MEANAD_TO_STD = 1.2533

_SIDES = ("both", "up", "down")


# Rows of windows are processed in blocks of this many, to stay inside the CPU cache.
_BLOCK = 2048


def _median_rows(a: FloatArray) -> FloatArray:
    """Row medians, partitioning ``a`` in place.

    One ``partition`` at the upper middle plus a max over the lower half is several times
    faster than ``np.median`` (or a two-index partition) on many short rows.
    """
    w = a.shape[1]
    k = w // 2
    a.partition(k, axis=1)
    upper = a[:, k].copy()
    if w % 2:
        return upper
    return np.asarray((a[:, :k].max(axis=1) + upper) / 2.0, dtype=np.float64)


def _baselines(rows: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Per row: (median, MAD-based scale, mean-absolute-deviation-based scale); clobbers rows."""
    med = _median_rows(rows)
    # Deviations overwrite the rows: no second window-sized allocation.
    np.subtract(rows, med[:, None], out=rows)
    np.abs(rows, out=rows)
    mean_s = _MEANAD_TO_STD * rows.mean(axis=1)
    return med, _MAD_TO_STD * _median_rows(rows), mean_s


def _baseline(values: list[float] | FloatArray) -> tuple[float, float, float]:
    """:func:`_baselines` of one window (the streaming path uses the very same code)."""
    med, mad_s, mean_s = _baselines(np.array([values], dtype=np.float64))
    return float(med[0]), float(mad_s[0]), float(mean_s[0])


@register("zscore")
class RobustZScore(Detector):
    """``|x - median| / max(1.4826·MAD, floors)`` over the last ``window`` learned values.

    The median and MAD are recomputed every ``refresh`` learned values rather than on
    every point: that keeps streaming cost at O(1) amortised, and the batch path computes
    exactly the same baselines with one vectorised median, so both paths agree.
    The scale floor (``min_scale`` absolute, ``rel_scale`` × |median| relative, and the
    mean absolute deviation) keeps flat stretches from turning every wiggle into infinity.
    """

    default_threshold = 4.0

    def __init__(
        self,
        *,
        window: int = 256,
        refresh: int = 32,
        min_points: int = 32,
        min_scale: float = 1e-9,
        rel_scale: float = 1e-3,
        side: str = "both",
    ) -> None:
        check_positive("window", window)
        check_positive("refresh", refresh)
        check_positive("min_points", min_points)
        check_positive("min_scale", min_scale)
        check_fraction("rel_scale", rel_scale)
        if side not in _SIDES:
            raise InputError(f"must be one of {_SIDES}, got {side!r}", where="side")
        self.window = int(window)
        self.refresh = int(refresh)
        self.min_points = int(min_points)
        self.min_scale = min_scale
        self.rel_scale = rel_scale
        self.side = side
        self._buf: deque[float] | None = None
        self._n = 0
        self._med = 0.0
        self._scale = 0.0
        self._ready = False

    def _floor(self, med: float, mad_s: float, mean_s: float) -> float:
        return max(mad_s, mean_s, self.min_scale, self.rel_scale * abs(med))

    def learn_one(self, x: float) -> None:
        """Add ``x`` to the window; refresh the baseline every ``refresh`` values."""
        if not math.isfinite(x):
            return
        buf = self._buf
        if buf is None:
            buf = self._buf = deque(maxlen=self.window)
        buf.append(clip_value(x))
        self._n += 1
        n = self._n
        if n % self.refresh == 0 and n >= self.min_points:
            med, mad_s, mean_s = _baseline(list(buf))
            self._med = med
            self._scale = self._floor(med, mad_s, mean_s)
            self._ready = True

    def score_one(self, x: float) -> float:
        """Robust z-distance of ``x`` from the current baseline (0 until ready)."""
        if not self._ready or not math.isfinite(x):
            return 0.0
        d = clip_value(x) - self._med
        if self.side == "up":
            d = max(d, 0.0)
        elif self.side == "down":
            d = max(-d, 0.0)
        return min(abs(d) / self._scale, 1e12)

    def score_many(self, xs: npt.ArrayLike) -> FloatArray:
        """Vectorised score-then-learn; the same baselines as the streaming path."""
        vals, ok = sanitize_batch(xs)
        good = vals[ok]
        hist = list(self._buf) if self._buf is not None else []
        n0, m = self._n, good.shape[0]
        allv = np.concatenate([np.asarray(hist, dtype=np.float64), good])
        off = n0 - len(hist)  # learned-count index of allv[0]
        # Baseline refresh points c (counts) that fall inside this batch.
        first = (n0 // self.refresh + 1) * self.refresh
        cs = np.arange(first, n0 + m + 1, self.refresh)
        cs = cs[cs >= self.min_points]
        meds, scales = self._baselines_at(allv, cs - off)
        # For local point j (count n0 + j before learning), the baseline in force is the
        # latest refresh c <= n0 + j.
        counts = n0 + np.arange(m)
        idx = np.searchsorted(cs, counts, side="right") - 1
        med = np.where(idx >= 0, meds[np.maximum(idx, 0)] if meds.size else 0.0, self._med)
        scale = np.where(idx >= 0, scales[np.maximum(idx, 0)] if scales.size else 1.0, self._scale)
        ready = (idx >= 0) | self._ready
        d = good - med
        if self.side == "up":
            d = np.maximum(d, 0.0)
        elif self.side == "down":
            d = np.maximum(-d, 0.0)
        z = np.where(ready, np.abs(d) / np.where(ready, scale, 1.0), 0.0)
        out = np.zeros(vals.shape[0])
        out[ok] = z
        self._commit(allv, n0 + m, meds, scales)
        return finish_scores(out)

    def _baselines_at(self, allv: FloatArray, ends: npt.NDArray[np.int64]) -> tuple[FloatArray, FloatArray]:
        """Median and floored scale of ``allv[end - window:end]`` for each end."""
        if ends.size == 0:
            return np.empty(0), np.empty(0)
        w = self.window
        meds = np.empty(ends.size)
        scales = np.empty(ends.size)
        full = ends >= w
        full_idx = np.flatnonzero(full)
        windows = sliding_window_view(allv, w) if full_idx.size else allv[None, :]
        for lo in range(0, full_idx.size, _BLOCK):
            sel = full_idx[lo : lo + _BLOCK]
            med, mad_s, mean_s = _baselines(windows[ends[sel] - w])  # fancy index = a copy
            meds[sel] = med
            scales[sel] = np.maximum(
                np.maximum(mad_s, mean_s), np.maximum(self.min_scale, self.rel_scale * np.abs(med))
            )
        for k in np.flatnonzero(~full):
            med_k, mad_k, mean_k = _baseline(allv[: ends[k]])
            meds[k] = med_k
            scales[k] = self._floor(med_k, mad_k, mean_k)
        return meds, scales

    def _commit(self, allv: FloatArray, n: int, meds: FloatArray, scales: FloatArray) -> None:
        buf = deque(allv[-self.window :].tolist(), maxlen=self.window)
        self._buf = buf
        self._n = n
        if meds.size:
            self._med = float(meds[-1])
            self._scale = float(scales[-1])
            self._ready = True
