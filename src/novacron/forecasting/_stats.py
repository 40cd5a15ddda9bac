"""Robust trend statistics: Theil-Sen slope, Mann-Kendall test, block reduction.

Everything here is plain numpy/scipy on small arrays (the callers reduce long windows to at
most a few hundred blocks first), so one call costs well under a millisecond or two.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats

__all__ = [
    "MannKendall",
    "SeasonalTrend",
    "TrendFit",
    "block_reduce",
    "mann_kendall",
    "robust_sigma",
    "seasonal_trend",
    "theil_sen",
]

FloatArray = npt.NDArray[np.float64]

# MAD → standard deviation for Gaussian noise.
_MAD_TO_SIGMA = 1.4826


@dataclass(frozen=True, slots=True)
class TrendFit:
    """A Theil-Sen line ``y = intercept + slope * t`` with a confidence band on the slope."""

    slope: float
    intercept: float
    slope_low: float
    slope_high: float
    residual_sigma: float

    def level_at(self, t: float) -> float:
        """The fitted (median) level at time ``t``."""
        return self.intercept + self.slope * t


@dataclass(frozen=True, slots=True)
class MannKendall:
    """Result of a one-sided Mann-Kendall test for an increasing trend.

    ``tau`` (Kendall's tau against time) is the effect size; ``p_value`` is one-sided and
    already corrected for serial correlation of the detrended series (Yue & Wang 2004).
    """

    s: int
    z: float
    p_value: float
    tau: float
    n_effective: float


def robust_sigma(x: FloatArray) -> float:
    """Standard deviation estimated from the median absolute deviation (outlier-proof)."""
    if x.size == 0:
        return 0.0
    return float(_MAD_TO_SIGMA * np.median(np.abs(x - np.median(x))))


def block_reduce(t: FloatArray, y: FloatArray, max_points: int) -> tuple[FloatArray, FloatArray]:
    """Median-aggregate consecutive points so at most ``max_points`` remain.

    Medians of blocks keep trend tests O(max_points²) on long windows and damp both noise
    and short-range autocorrelation; the most recent block is kept whole (blocks are cut
    from the end) so the newest data always counts.
    """
    n = t.size
    if n <= max_points:
        return t, y
    size = math.ceil(n / max_points)
    usable = (n // size) * size
    tt = t[n - usable :].reshape(-1, size)
    yy = y[n - usable :].reshape(-1, size)
    return np.median(tt, axis=1), np.median(yy, axis=1)


def theil_sen(t: FloatArray, y: FloatArray, confidence: float = 0.9) -> TrendFit:
    """Theil-Sen slope (median of pairwise slopes) with its ``confidence`` band."""
    # Centre time so intercepts stay well conditioned with epoch timestamps.
    t0 = float(t[0])
    slope, intercept, low, high = stats.theilslopes(y, t - t0, alpha=confidence)
    resid = y - (intercept + slope * (t - t0))
    return TrendFit(
        slope=float(slope),
        intercept=float(intercept - slope * t0),
        slope_low=float(low),
        slope_high=float(high),
        residual_sigma=robust_sigma(resid),
    )


def _tie_term(y: FloatArray) -> float:
    _, counts = np.unique(y, return_counts=True)
    c = counts[counts > 1].astype(np.float64)
    return float(np.sum(c * (c - 1) * (2 * c + 5)))


def _autocorrelation_factor(y: FloatArray, t: FloatArray, slope: float) -> float:
    """Yue-Wang effective-sample-size factor n/n* from the detrended lag autocorrelations.

    Only lags whose autocorrelation is significant at 5 % count, as in Hamed & Rao (1998);
    without this a daily cycle or any slow wander looks like a trend to Mann-Kendall.
    """
    n = y.size
    resid = y - slope * (t - t[0])
    resid = resid - resid.mean()
    denom = float(np.dot(resid, resid))
    # A (near-)perfect line has only rounding left in its residuals: nothing to correct.
    if denom <= 1e-12 * max(1.0, float(np.dot(y - y.mean(), y - y.mean()))):
        return 1.0
    max_lag = max(1, n // 3)
    acf = np.array([np.dot(resid[:-k], resid[k:]) / denom for k in range(1, max_lag + 1)])
    bound = 1.96 / math.sqrt(n)
    lags = np.arange(1, max_lag + 1)
    keep = np.abs(acf) > bound
    factor = 1.0 + 2.0 * float(np.sum((1.0 - lags[keep] / n) * acf[keep]))
    return max(1.0, factor)


def mann_kendall(t: FloatArray, y: FloatArray, slope: float = 0.0) -> MannKendall:
    """One-sided Mann-Kendall test that ``y`` increases with ``t``.

    ``slope`` (normally the Theil-Sen slope) detrends the series for the
    serial-correlation correction.
    """
    n = y.size
    if n < 3:
        return MannKendall(s=0, z=0.0, p_value=1.0, tau=0.0, n_effective=float(n))
    diff = np.sign(y[None, :] - y[:, None])
    s = int(np.sum(np.triu(diff, k=1)))
    var = (n * (n - 1) * (2 * n + 5) - _tie_term(y)) / 18.0
    factor = _autocorrelation_factor(y, t, slope)
    var *= factor
    if var <= 0.0:
        return MannKendall(s=s, z=0.0, p_value=1.0, tau=0.0, n_effective=n / factor)
    # Continuity correction towards zero.
    z = (s - math.copysign(1.0, s)) / math.sqrt(var) if s != 0 else 0.0
    tau = s / (n * (n - 1) / 2.0)
    return MannKendall(s=s, z=z, p_value=float(stats.norm.sf(z)), tau=tau, n_effective=n / factor)


@dataclass(frozen=True, slots=True)
class SeasonalTrend:
    """Seasonal Sen slope and seasonal Kendall test (Hirsch, Slack & Smith 1982).

    Only readings at the same phase of the cycle are compared, so a daily rhythm cancels
    out exactly instead of tilting the slope. ``level`` is the cycle-average level at the
    last reading.
    """

    fit: TrendFit
    test: MannKendall
    level: float


def _phase_bins(t: FloatArray, y: FloatArray, season_s: float, bins: int) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Mean time, mean value and phase of each occupied (cycle, phase-bin) cell."""
    width = season_s / bins
    cell = np.floor(t / width).astype(np.int64)
    uniq, inverse = np.unique(cell, return_inverse=True)
    counts = np.bincount(inverse).astype(np.float64)
    tb = np.bincount(inverse, weights=t) / counts
    yb = np.bincount(inverse, weights=y) / counts
    return tb, yb, (uniq % bins).astype(np.float64)


def seasonal_trend(
    t: FloatArray, y: FloatArray, season_s: float, *, bins: int = 24, confidence: float = 0.9
) -> SeasonalTrend:
    """Trend of ``y`` with a cycle of ``season_s`` seconds, from same-phase pairs.

    Readings are first averaged into ``bins`` phase bins per cycle (hourly for a day),
    which also tames the correlation between neighbouring readings.
    """
    tb, yb, phase = _phase_bins(t, y, season_s, bins)
    slopes: list[FloatArray] = []
    s_total = 0
    var = 0.0
    pairs = 0
    for p in np.unique(phase):
        idx = np.flatnonzero(phase == p)
        n = idx.size
        if n < 2:
            continue
        ti, yi = tb[idx], yb[idx]
        iu, ju = np.triu_indices(n, k=1)
        slopes.append((yi[ju] - yi[iu]) / (ti[ju] - ti[iu]))
        s_total += int(np.sum(np.sign(yi[ju] - yi[iu])))
        var += (n * (n - 1) * (2 * n + 5) - _tie_term(yi)) / 18.0
        pairs += n * (n - 1) // 2
    if not slopes or var <= 0:
        zero = TrendFit(0.0, float(np.median(y)), 0.0, 0.0, robust_sigma(y))
        return SeasonalTrend(zero, MannKendall(0, 0.0, 1.0, 0.0, float(pairs)), float(np.median(y)))
    all_slopes = np.sort(np.concatenate(slopes))
    slope = float(np.median(all_slopes))
    # Rank-based band for the median slope, as for Theil-Sen (Gilbert 1987, eq. 16.5).
    c = float(stats.norm.ppf(0.5 + confidence / 2)) * math.sqrt(var)
    lo = int(np.clip(math.floor((pairs - c) / 2), 0, pairs - 1))
    hi = int(np.clip(math.ceil((pairs + c) / 2), 0, pairs - 1))
    z = (s_total - math.copysign(1.0, s_total)) / math.sqrt(var) if s_total != 0 else 0.0
    test = MannKendall(s_total, z, float(stats.norm.sf(z)), s_total / pairs, float(pairs))
    last = tb >= tb[-1] - season_s + 1e-9
    level = float(np.mean(yb[last] - slope * (tb[last] - t[-1])))
    resid = yb - slope * (tb - t[-1])
    fit = TrendFit(
        slope,
        level - slope * float(t[-1]),
        float(all_slopes[lo]),
        float(all_slopes[hi]),
        robust_sigma(resid - np.median(resid)),
    )
    return SeasonalTrend(fit, test, level)
