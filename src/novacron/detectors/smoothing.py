"""Forecast-residual detectors: EWMA, and Holt-Winters-style daily + weekly seasonality."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from scipy.signal import lfilter

from novacron.detectors._ew import EWState, ew_batch, ew_update
from novacron.detectors._seasonal import phase_smooth
from novacron.detectors.base import (
    Detector,
    FloatArray,
    check_fraction,
    check_positive,
    clip_value,
    finish_score,
    finish_scores,
    register,
    sanitize_batch,
)
from novacron.errors import InputError

__all__ = ["EWMA", "HoltWinters"]

_SIDES = ("both", "up", "down")


def _check_side(side: str) -> None:
    if side not in _SIDES:
        raise InputError(f"must be one of {_SIDES}, got {side!r}", where="side")


def _one_sided(d: float, side: str) -> float:
    if side == "up":
        return max(d, 0.0)
    if side == "down":
        return max(-d, 0.0)
    return abs(d)


@register("ewma")
class EWMA(Detector):
    """Distance from an exponentially weighted mean, in exponentially weighted std units."""

    default_threshold = 4.0

    def __init__(
        self,
        *,
        alpha: float = 0.05,
        warmup: int = 30,
        min_scale: float = 1e-9,
        rel_scale: float = 1e-3,
        side: str = "both",
    ) -> None:
        check_fraction("alpha", alpha)
        check_positive("warmup", warmup)
        check_positive("min_scale", min_scale)
        _check_side(side)
        self.alpha = alpha
        self.warmup = int(warmup)
        self.min_scale = min_scale
        self.rel_scale = rel_scale
        self.side = side
        self._s = EWState()

    def learn_one(self, x: float) -> None:
        """Fold ``x`` into the running mean and variance."""
        if not math.isfinite(x):
            return
        x = clip_value(x)
        ew_update(self._s, x, self.alpha)

    def score_one(self, x: float) -> float:
        """Standardised distance of ``x`` from the running mean (0 during warm-up)."""
        s = self._s
        if s.n < self.warmup or not math.isfinite(x):
            return 0.0
        m = s.mean
        scale = max(math.sqrt(s.var), self.min_scale, self.rel_scale * abs(m))
        return finish_score(_one_sided(clip_value(x) - m, self.side) / scale)

    def score_many(self, xs: npt.ArrayLike) -> FloatArray:
        """Vectorised score-then-learn through linear filters."""
        vals, ok = sanitize_batch(xs)
        good = vals[ok]
        n0 = self._s.n
        mean, var = ew_batch(good, self.alpha, self._s)
        scale = np.maximum(np.sqrt(var), np.maximum(self.min_scale, self.rel_scale * np.abs(mean)))
        d = good - mean
        if self.side == "up":
            d = np.maximum(d, 0.0)
        elif self.side == "down":
            d = np.maximum(-d, 0.0)
        z = np.abs(d) / scale
        z[(n0 + np.arange(good.shape[0])) < self.warmup] = 0.0
        out = np.zeros(vals.shape[0])
        out[ok] = z
        return finish_scores(out)


@register("holt_winters")
class HoltWinters(Detector):
    """Residual of an additive level + daily + weekly seasonal forecast, standardised.

    The forecast is ``level + mean(daily deviation, weekly deviation)`` where each
    deviation profile is an exponentially weighted average, per phase of the season, of how
    far values sat from the level. Periods are in points (288 = one day of 5-minute steps);
    0 switches a season off. A missing value still advances the phase, because seasons are
    about time steps, not about how many values arrived.
    """

    default_threshold = 4.0

    def __init__(
        self,
        *,
        alpha: float = 0.1,
        gamma: float = 0.2,
        beta: float = 0.02,
        period_daily: int = 288,
        period_weekly: int = 2016,
        warmup: int = 30,
        min_scale: float = 1e-9,
        rel_scale: float = 1e-3,
        side: str = "both",
    ) -> None:
        for name, v in (("alpha", alpha), ("gamma", gamma), ("beta", beta)):
            check_fraction(name, v)
        if period_daily < 0 or period_weekly < 0:
            raise InputError("season periods must be >= 0", where="period_daily/period_weekly")
        check_positive("warmup", warmup)
        check_positive("min_scale", min_scale)
        _check_side(side)
        self.alpha = alpha
        self.gamma = gamma
        self.beta = beta
        self.period_daily = int(period_daily)
        self.period_weekly = int(period_weekly)
        self.warmup = int(warmup)
        self.min_scale = min_scale
        self.rel_scale = rel_scale
        self.side = side
        self._t = 0
        self._level: float | None = None
        self._daily: list[float] | None = None
        self._weekly: list[float] | None = None
        self._res = EWState()

    def _profiles(self) -> tuple[list[float], list[float]]:
        if self._daily is None or self._weekly is None:
            nan = math.nan
            self._daily = [nan] * self.period_daily
            self._weekly = [nan] * self.period_weekly
        return self._daily, self._weekly

    def _seasonal(self) -> tuple[float, int, int]:
        """Seasonal deviation forecast for the current step and the two phases."""
        daily, weekly = self._profiles()
        t = self._t
        pd = t % self.period_daily if self.period_daily else -1
        pw = t % self.period_weekly if self.period_weekly else -1
        total, k = 0.0, 0
        if pd >= 0 and not math.isnan(daily[pd]):
            total += daily[pd]
            k += 1
        if pw >= 0 and not math.isnan(weekly[pw]):
            total += weekly[pw]
            k += 1
        return (total / k if k else 0.0), pd, pw

    def learn_one(self, x: float) -> None:
        """Update level, seasonal profiles and residual spread; always advance the phase."""
        if not math.isfinite(x):
            self._t += 1
            return
        x = clip_value(x)
        if self._level is None:
            self._level = x
        season, pd, pw = self._seasonal()
        level = self._level
        r = x - level - season
        ew_update(self._res, r, self.beta)
        e = x - level
        daily, weekly = self._profiles()
        g = self.gamma
        if pd >= 0:
            old = daily[pd]
            daily[pd] = e if math.isnan(old) else old + g * (e - old)
        if pw >= 0:
            old = weekly[pw]
            weekly[pw] = e if math.isnan(old) else old + g * (e - old)
        self._level = level + self.alpha * (x - level)
        self._t += 1

    def score_one(self, x: float) -> float:
        """Standardised forecast residual of ``x`` (0 during warm-up)."""
        s = self._res
        if s.n < self.warmup or not math.isfinite(x) or self._level is None:
            return 0.0
        season, _, _ = self._seasonal()
        r = clip_value(x) - self._level - season
        scale = max(math.sqrt(s.var), self.min_scale, self.rel_scale * abs(self._level))
        return finish_score(_one_sided(r - s.mean, self.side) / scale)

    def score_many(self, xs: npt.ArrayLike) -> FloatArray:
        """Vectorised score-then-learn; batches with missing values take the streaming loop.

        A missing value advances the phase without learning, which breaks the regular
        season layout the vectorised path relies on.
        """
        arr = np.asarray(xs, dtype=np.float64).reshape(-1)
        vals, ok = sanitize_batch(arr)
        if not ok.all() or vals.shape[0] == 0:
            return super().score_many(arr)
        m = vals.shape[0]
        a = self.alpha
        level0 = self._level if self._level is not None else float(vals[0])
        after = lfilter([a], [1.0, -(1.0 - a)], vals, zi=[(1.0 - a) * level0])[0]
        level = np.concatenate([[level0], after[:-1]])
        e = vals - level
        season = self._season_many(e)
        r = vals - level - season
        n0 = self._res.n
        mean, var = ew_batch(r, self.beta, self._res)
        scale = np.maximum(np.sqrt(var), np.maximum(self.min_scale, self.rel_scale * np.abs(level)))
        d = r - mean
        if self.side == "up":
            d = np.maximum(d, 0.0)
        elif self.side == "down":
            d = np.maximum(-d, 0.0)
        z = np.abs(d) / scale
        z[(n0 + np.arange(m)) < self.warmup] = 0.0
        self._level = float(after[-1])
        self._t += m
        return finish_scores(z)

    def _season_many(self, e: FloatArray) -> FloatArray:
        """Seasonal forecast per point (mean of the seen profiles), updating the profiles."""
        daily, weekly = self._profiles()
        total = np.zeros(e.shape[0])
        k = np.zeros(e.shape[0])
        updated = []
        for prof in (daily, weekly):
            if not prof:
                updated.append(prof)
                continue
            before, final = phase_smooth(e, self._t, self.gamma, np.asarray(prof, dtype=np.float64))
            seen = ~np.isnan(before)
            total += np.where(seen, before, 0.0)
            k += seen
            updated.append(final.tolist())
        self._daily, self._weekly = updated
        return np.where(k > 0, total / np.maximum(k, 1), 0.0)
