"""Accelerating growth: a robust quadratic trend weighed against the straight line.

A leak whose growth speeds up (a cache that grows with the traffic it serves, a queue
falling behind) reaches its limit sooner than its average slope says. The window of an
already-detected leak is fitted twice, by a line and by a parabola (Huber-weighted least
squares, so spikes do not bend either; with a season, phase offsets are fitted alongside),
and the parabola is used only when the Bayesian information criterion prefers it clearly.
Only acceleration is taken: a slowdown keeps the straight line, the earlier and safer ETA.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from novacron.forecasting._stats import (
    FloatArray,
    _autocorrelation_factor,
    _phase_bins,
    block_reduce,
    robust_sigma,
)

__all__ = ["Curvature", "accelerating_eta", "fit_curvature"]

# BIC difference counted as strong evidence (Kass & Raftery 1995).
_STRONG_EVIDENCE = 6.0
_HUBER_K = 1.345
_IRLS_STEPS = 8
_Z90 = 1.6449
# A parabola per phase of a cycle needs three points per phase.
_MIN_CYCLES = 3  # one-sided 95 %: the ends of a 90 % band


@dataclass(frozen=True, slots=True)
class Curvature:
    """``y ≈ level + slope·s + accel·s²`` with ``s`` seconds after the last reading.

    ``delta_bic`` is the BIC of the best other shape minus the parabola's: positive
    favours the curve.
    """

    level: float
    slope: float
    accel: float
    accel_se: float
    delta_bic: float

    @property
    def accelerating(self) -> bool:
        """Whether the parabola is clearly better and bends upwards."""
        return self.delta_bic >= _STRONG_EVIDENCE and self.accel > 0.0


def _huber_fit(x: FloatArray, y: FloatArray) -> tuple[FloatArray, FloatArray, float]:
    """Huber-weighted least squares: coefficients, final weights and the weighted RSS."""
    w: FloatArray = np.ones(y.size)
    beta: FloatArray = np.zeros(x.shape[1])
    for _ in range(_IRLS_STEPS):
        sw = np.sqrt(w)
        beta = np.asarray(np.linalg.lstsq(x * sw[:, None], y * sw, rcond=None)[0], dtype=np.float64)
        resid = y - x @ beta
        scale = robust_sigma(resid) or float(np.std(resid)) or 1.0
        u = np.abs(resid) / (_HUBER_K * scale)
        w = np.asarray(np.where(u <= 1.0, 1.0, 1.0 / np.maximum(u, 1e-12)), dtype=np.float64)
    resid = y - x @ beta
    return beta, w, float(np.sum(w * resid**2))


def _design(t: FloatArray, y: FloatArray, season_s: float, bins: int) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Points to fit, their times, and the fixed columns (an intercept or phase offsets)."""
    if season_s > 0:
        tb, yb, phase = _phase_bins(t, y, season_s, bins)
        # One offset per phase seen: the daily shape is fitted, not mistaken for curvature.
        seen = np.unique(phase)
        return tb, yb, (phase[:, None] == seen[None, :]).astype(np.float64)
    tb, yb = block_reduce(t, y, 128)
    return tb, yb, np.ones((tb.size, 1))


def _bic(rss: float, n: int, n_eff: float, params: int, tiny: float) -> float:
    """BIC of a least-squares fit whose ``n`` residuals carry ``n_eff`` independent ones."""
    return n_eff * math.log(max(rss, tiny) / n) + params * math.log(n_eff)


def fit_curvature(
    t: FloatArray, y: FloatArray, *, season_s: float = 0.0, bins: int = 24, knot: float | None = None
) -> Curvature | None:
    """Line and parabola over ``t``/``y``; None when too few points to tell them apart.

    ``knot`` (a time inside the span) offers a third shape, a line that bends once at
    ``knot`` (growth that began or sped up then): the parabola must beat the better of
    the line and the bent line, or a leak that started recently would pass for an
    accelerating one and get too early an ETA. The knot was chosen from the data, so it
    is charged as a parameter too.
    """
    if season_s > 0 and t[-1] - t[0] < _MIN_CYCLES * season_s:
        # With phase offsets, two cycles give each phase two points: the "curvature" would
        # be how the daily shape differs between the days, not a bend in the trend.
        return None
    tb, yb, fixed = _design(t, y, season_s, bins)
    k = fixed.shape[1] + 2
    if tb.size < k + 4 or np.ptp(tb) <= 0:
        return None
    span = float(np.ptp(tb))
    s = (tb - float(t[-1])) / span  # scaled for conditioning, zero at the last reading
    n = tb.size
    tiny = 1e-12 * max(1.0, float(np.sum(yb**2)))
    quad_x = np.column_stack([fixed, s, s**2])
    quad, w, rss_quad = _huber_fit(quad_x, yb)
    # Neighbouring residuals of a real series move together; BIC counted over raw points
    # would then call any slow wander "strong evidence" of curvature. As for the trend
    # test, the evidence is scaled to the effective number of independent residuals.
    n_eff = n / _autocorrelation_factor(yb - quad_x @ quad, tb, 0.0)
    _, _, rss_lin = _huber_fit(np.column_stack([fixed, s]), yb)
    best_other = _bic(rss_lin, n, n_eff, k - 1, tiny)
    if knot is not None and tb[1] < knot < tb[-2]:
        bend = np.maximum(0.0, s - (knot - float(t[-1])) / span)
        _, _, rss_bent = _huber_fit(np.column_stack([fixed, s, bend]), yb)
        best_other = min(best_other, _bic(rss_bent, n, n_eff, k + 1, tiny))
    sigma2 = rss_quad / max(1, n - k)
    cov = sigma2 * np.linalg.pinv(quad_x.T @ (quad_x * w[:, None]))
    # The mean of the fixed terms is the (cycle-average) level at the last reading.
    return Curvature(
        level=float(np.mean(quad[: fixed.shape[1]])),
        slope=float(quad[-2]) / span,
        accel=float(quad[-1]) / span**2,
        accel_se=math.sqrt(max(0.0, float(cov[-1, -1]))) / span**2,
        delta_bic=best_other - _bic(rss_quad, n, n_eff, k, tiny),
    )


def _reach(headroom: float, slope: float, accel: float) -> float:
    """Seconds until ``slope·s + accel·s²`` first reaches ``headroom`` (accel > 0)."""
    return (-slope + math.sqrt(slope * slope + 4.0 * accel * headroom)) / (2.0 * accel)


def accelerating_eta(curve: Curvature, limit: float) -> tuple[float, float] | None:
    """ETA and its early end if the growth accelerates, else None.

    The early end uses the upper end of the curvature's 90 % band; the late end is left
    to the straight line (growth that stops accelerating).
    """
    if not curve.accelerating:
        return None
    headroom = max(0.0, limit - curve.level)
    eta = _reach(headroom, curve.slope, curve.accel)
    early = _reach(headroom, curve.slope, curve.accel + _Z90 * curve.accel_se)
    return eta, min(early, eta)
