"""Time-to-exhaustion and leak detection for bounded resources.

:func:`assess_exhaustion` looks at one history and says whether the resource leaks and when
it will hit its limit. :class:`ExhaustionTracker` is the streaming form the controller
feeds point by point.

How a leak is told from normal behaviour:

* the trend is a Theil-Sen line (robust to spikes) over an adaptive window: the newest
  window long enough to judge, widened while older data agree with its slope;
* the window restarts after a drop (a restart, a clean-up, a collection), because the old
  trend is gone;
* several drops make a sawtooth; then only the floors of the teeth (what survives each
  collection) are tested, so a healthy GC or clean-up cycle is not a leak however steep
  each tooth is, while a cycle whose floors creep up is;
* growth must pass a one-sided Mann-Kendall test corrected for serial correlation, with
  Kendall's tau as the effect size;
* the ETA comes from the line unless a parabola fits the window clearly better (BIC) and
  bends upwards: accelerating growth arrives sooner than its average slope says.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from novacron.forecasting._curvature import accelerating_eta, fit_curvature
from novacron.forecasting._segments import find_drops, teeth
from novacron.forecasting._stats import (
    FloatArray,
    MannKendall,
    TrendFit,
    block_reduce,
    mann_kendall,
    seasonal_trend,
    theil_sen,
)
from novacron.forecasting.errors import AlreadyExhaustedError, check_history

__all__ = ["ExhaustionAssessment", "ExhaustionConfig", "assess_exhaustion", "time_to_exhaustion"]

_DAY_S = 86_400.0
_SELECT_CONFIDENCE = 0.99
# Windows shorter than this many times ``min_points`` are too noisy to overrule longer ones.
_SHORTEST = 4
# A tooth that peaked this close to the limit was probably killed, not cleaned up.
_KILLED_FRACTION = 0.9


@dataclass(frozen=True, slots=True)
class ExhaustionConfig:
    """Tuning for leak tests; the defaults suit seconds-to-hours sampling of one process.

    ``season_s`` is the length of the resource's cycle if it has one (a day for daily
    traffic): windows then span whole cycles and at least one, so a morning ramp is never
    read as a leak. ``min_window_s`` is a plain lower bound on the window.
    """

    min_points: int = 20
    max_points: int = 128
    alpha: float = 0.01
    min_tau: float = 0.3
    confidence: float = 0.9
    min_window_s: float = 0.0
    season_s: float = 0.0
    drop_sigmas: float = 4.0
    min_drop_fraction: float = 0.02
    min_teeth: int = 6
    horizon_s: float = 365 * _DAY_S


@dataclass(frozen=True, slots=True)
class ExhaustionAssessment:
    """The verdict on one history at time ``at`` (the last observation).

    ``leak`` is the decision; ``reason`` says why not when it is False. ``eta_s`` and
    ``interval`` are seconds from ``at``; ``mode`` is ``"trend"`` (raw points after the
    last change point), ``"seasonal"`` (the same, compared phase by phase of the cycle) or
    ``"floors"`` (tooth floors of a sawtooth).
    """

    leak: bool
    reason: str
    at: float
    level: float
    limit: float
    eta_s: float = math.inf
    interval: tuple[float, float] = (math.inf, math.inf)
    confidence: float = 0.0
    mode: str = "trend"
    slope: float = 0.0
    p_value: float = 1.0
    tau: float = 0.0
    window: tuple[float, float] = (0.0, 0.0)
    points: int = 0
    evidence: dict[str, float | str] = field(default_factory=dict)


def _windows(t: FloatArray, cfg: ExhaustionConfig) -> list[int]:
    """Start indices of candidate windows, longest first, each about half the previous.

    With a season, every window spans whole cycles, so a partial day never tilts the
    slope; without one, windows halve down to four times ``min_points``.
    """
    n = t.size
    if cfg.season_s > 0:
        cycles = int((t[-1] - t[0]) // cfg.season_s)
        starts: list[int] = []
        while cycles >= 1:
            start = int(np.searchsorted(t, t[-1] - cycles * cfg.season_s, side="right"))
            if n - start >= cfg.min_points and start not in starts:
                starts.append(start)
            cycles //= 2
        return starts or [0]
    starts = [0]
    length = n // 2
    while length >= _SHORTEST * cfg.min_points and t[-1] - t[n - length] >= cfg.min_window_s:
        starts.append(n - length)
        length //= 2
    return starts


def _adaptive_fit(t: FloatArray, y: FloatArray, cfg: ExhaustionConfig) -> tuple[int, TrendFit]:
    """Pick the longest window whose slope no newer window contradicts upwards.

    A newer window whose band lies wholly above an older slope means the growth
    accelerated (a leak began recently), so the older data go. A slowdown is not a
    reason to shorten the window: flat stretches are normal in a leak that grows in
    steps, and a leak that is fixed ends with a restart, which is a change point.
    """
    starts = _windows(t, cfg)
    # A strict band for choosing: several windows are compared, and chance acceleration
    # in a short noisy window must not be read as a new leak.
    fits = [theil_sen(*block_reduce(t[s:], y[s:], cfg.max_points), _SELECT_CONFIDENCE) for s in starts]
    chosen = len(starts) - 1
    for i, fit in enumerate(fits):
        if not any(f.slope_low > fit.slope for f in fits[i + 1 :]):
            chosen = i
            break
    start = starts[chosen]
    return start, theil_sen(*block_reduce(t[start:], y[start:], cfg.max_points), cfg.confidence)


def _eta(headroom: float, fit: TrendFit, horizon: float) -> tuple[float, tuple[float, float]]:
    eta = headroom / fit.slope
    low = headroom / fit.slope_high if fit.slope_high > 0 else eta
    high = headroom / fit.slope_low if fit.slope_low > 0 else horizon
    return eta, (min(low, eta), min(max(high, eta), horizon))


def _judge(
    t: FloatArray,
    y: FloatArray,
    fit: TrendFit,
    mk: MannKendall,
    *,
    limit: float,
    level: float,
    cfg: ExhaustionConfig,
    mode: str,
) -> ExhaustionAssessment:
    """Turn a fitted window and its trend test into a verdict (effect size, ETA)."""
    head = ExhaustionAssessment(
        leak=False,
        reason="",
        at=float(t[-1]),
        level=level,
        limit=limit,
        mode=mode,
        slope=fit.slope,
        p_value=mk.p_value,
        tau=mk.tau,
        window=(float(t[0]), float(t[-1])),
        points=int(t.size),
        evidence={
            "slope_low": fit.slope_low,
            "slope_high": fit.slope_high,
            "mann_kendall_z": mk.z,
            "n_effective": mk.n_effective,
            "residual_sigma": fit.residual_sigma,
        },
    )
    if np.ptp(y) == 0.0:
        return replace(head, reason="constant series")
    if fit.slope <= 0.0:
        return replace(head, reason="not growing")
    if mk.p_value > cfg.alpha or mk.tau < cfg.min_tau:
        return replace(head, reason=f"growth not significant (p={mk.p_value:.3g}, tau={mk.tau:.2f})")
    eta, interval = _eta(max(0.0, limit - level), fit, cfg.horizon_s)
    if eta > cfg.horizon_s:
        return replace(head, reason=f"growing, but the limit is beyond the {cfg.horizon_s:.0f} s horizon")
    confidence = float(min(1.0, max(0.0, 1.0 - mk.p_value)))
    return replace(head, leak=True, reason="leak", eta_s=eta, interval=interval, confidence=confidence)


def _accelerated(
    verdict: ExhaustionAssessment, t: FloatArray, y: FloatArray, *, season_s: float = 0.0
) -> ExhaustionAssessment:
    """Bring the ETA forward when growth since the last change point clearly accelerates.

    ``t``/``y`` are all points since the change point; the line was fitted on the newest
    part from ``verdict.window[0]``, which the curvature test also offers as a bend. The
    leak decision stays with the line and its rank test; curvature only changes *when*.
    The interval is widened to span both shapes: its early end from the parabola's
    steepest plausible curvature, its late end from the line (growth that stops
    accelerating).
    """
    if not verdict.leak or verdict.eta_s <= 0.0:
        return verdict
    curve = fit_curvature(t, y, season_s=season_s, knot=verdict.window[0])
    if curve is None:
        return verdict
    evidence = {**verdict.evidence, "curvature_delta_bic": curve.delta_bic, "trend_shape": "linear"}
    found = accelerating_eta(curve, verdict.limit)
    if found is None or found[0] >= verdict.eta_s:
        return replace(verdict, evidence=evidence)
    eta, early = found
    low, high = verdict.interval
    evidence.update(
        trend_shape="accelerating",
        linear_eta_s=verdict.eta_s,
        acceleration=curve.accel,
        curve_level=curve.level,
        curve_slope=curve.slope,
    )
    return replace(verdict, eta_s=eta, interval=(min(low, early), max(high, verdict.eta_s)), evidence=evidence)


def _not_leak(t: FloatArray, y: FloatArray, limit: float, reason: str) -> ExhaustionAssessment:
    return ExhaustionAssessment(
        leak=False, reason=reason, at=float(t[-1]), level=float(y[-1]), limit=limit, points=int(t.size)
    )


def _floors(
    t: FloatArray, y: FloatArray, drops: list[int], limit: float, cfg: ExhaustionConfig
) -> ExhaustionAssessment | None:
    """Test the floors of a sawtooth; exhaustion is when floor + tooth height meets the limit."""
    tooth = teeth(t, y, drops)
    if tooth.floor_t.size < cfg.min_teeth:
        return None
    fit = theil_sen(tooth.floor_t, tooth.floor_y, cfg.confidence)
    level = fit.level_at(float(t[-1])) + tooth.amplitude
    mk = mann_kendall(tooth.floor_t, tooth.floor_y, fit.slope)
    verdict = _judge(tooth.floor_t, tooth.floor_y, fit, mk, limit=limit, level=level, cfg=cfg, mode="floors")
    extra = {"tooth_height": tooth.amplitude, "tooth_period_s": tooth.period_s}
    return replace(verdict, evidence={**verdict.evidence, **extra})


def _trend(ts: FloatArray, ys: FloatArray, limit: float, cfg: ExhaustionConfig) -> ExhaustionAssessment:
    """Test raw points (plain or seasonal trend) over an adaptive window."""
    if ts.size < cfg.min_points:
        return _not_leak(ts, ys, limit, f"not enough history: need {cfg.min_points} points")
    need_s = max(cfg.min_window_s, cfg.season_s)
    if ts[-1] - ts[0] < need_s:
        return _not_leak(ts, ys, limit, f"not enough history: need {need_s:.0f} s")
    if cfg.season_s > 0:
        return _seasonal(ts, ys, limit, cfg)
    offset, fit = _adaptive_fit(ts, ys, cfg)
    level = fit.level_at(float(ts[-1]))
    mk = mann_kendall(*block_reduce(ts[offset:], ys[offset:], cfg.max_points), fit.slope)
    verdict = _judge(ts[offset:], ys[offset:], fit, mk, limit=limit, level=level, cfg=cfg, mode="trend")
    return _accelerated(verdict, ts, ys)


def _current(
    t: FloatArray, y: FloatArray, drops: list[int], limit: float, cfg: ExhaustionConfig
) -> ExhaustionAssessment:
    """Test the raw points since the last drop (the change point)."""
    start = drops[-1] if drops else 0
    verdict = _trend(t[start:], y[start:], limit, cfg)
    if verdict.leak and drops and _cleanup_expected(t, y, drops, verdict.level, limit):
        return _not_leak(t, y, limit, "a periodic clean-up is due before the limit")
    return verdict


def _seasonal(ts: FloatArray, ys: FloatArray, limit: float, cfg: ExhaustionConfig) -> ExhaustionAssessment:
    """Seasonal trend over the longest window no newer whole-cycle window contradicts."""
    starts = [0, *(s for s in _windows(ts, cfg) if ts[-1] - ts[s] >= 2 * cfg.season_s and s > 0)]
    trends = [seasonal_trend(ts[s:], ys[s:], cfg.season_s, confidence=cfg.confidence) for s in starts]
    chosen = len(starts) - 1
    for i, tr in enumerate(trends):
        if not any(o.fit.slope_low > tr.fit.slope for o in trends[i + 1 :]):
            chosen = i
            break
    tr, start = trends[chosen], starts[chosen]
    verdict = _judge(ts[start:], ys[start:], tr.fit, tr.test, limit=limit, level=tr.level, cfg=cfg, mode="seasonal")
    return _accelerated(verdict, ts, ys, season_s=cfg.season_s)


def _cleanup_expected(t: FloatArray, y: FloatArray, drops: list[int], level: float, limit: float) -> bool:
    """Whether the current rise is one more tooth of a cycle that frees itself.

    With two or more drops the cycle is established (its floors carry any leak signal).
    After a single drop, the earlier rise counts as a cycle only if it was freed well
    below the limit (a kill at the limit looks the same but is no clean-up) and the
    current rise has not outgrown it. Either way, an overdue clean-up stops excusing.
    """
    elapsed = t[-1] - t[drops[-1]]
    if len(drops) >= 2:
        return bool(elapsed <= 1.5 * teeth(t, y, drops).period_s)
    first_peak = float(np.max(y[: drops[0]]))
    first_span = float(t[drops[0] - 1] - t[0])
    return first_peak < _KILLED_FRACTION * limit and level <= first_peak and elapsed <= 1.5 * first_span


def assess_exhaustion(
    t: FloatArray, y: FloatArray, limit: float, config: ExhaustionConfig | None = None
) -> ExhaustionAssessment:
    """Judge whether a bounded resource leaks and when it reaches ``limit``.

    ``t`` must be strictly increasing seconds and ``y`` finite and non-negative (checked).
    Never raises for "no leak": the verdict says why. Already at or over the limit gives
    ``leak=True`` with ``eta_s == 0`` and ``reason == "already exhausted"``.
    """
    cfg = config or ExhaustionConfig()
    check_history(t, y, limit, min_points=2)
    if y[-1] >= limit:
        return ExhaustionAssessment(
            leak=True,
            reason="already exhausted",
            at=float(t[-1]),
            level=float(y[-1]),
            limit=limit,
            eta_s=0.0,
            interval=(0.0, 0.0),
            confidence=1.0,
            points=int(t.size),
        )
    drops = find_drops(y, limit, cfg.drop_sigmas, cfg.min_drop_fraction)
    verdicts = [_current(t, y, drops, limit, cfg)]
    floors = _floors(t, y, drops, limit, cfg)
    if floors is not None:
        verdicts.insert(0, floors)
    leaks = [v for v in verdicts if v.leak]
    if leaks:
        return min(leaks, key=lambda v: v.eta_s)
    return verdicts[0]


def time_to_exhaustion(
    t: FloatArray, y: FloatArray, limit: float, config: ExhaustionConfig | None = None
) -> ExhaustionAssessment:
    """Like :func:`assess_exhaustion`, but a resource already at its limit is an error.

    For one-shot questions (the CLI), where "already exhausted" is an answer the caller
    must not mistake for a forecast.
    """
    verdict = assess_exhaustion(t, y, limit, config)
    if verdict.reason == "already exhausted":
        raise AlreadyExhaustedError(
            f"already exhausted: last value {verdict.level:g} >= limit {limit:g}", where="limit"
        )
    return verdict
