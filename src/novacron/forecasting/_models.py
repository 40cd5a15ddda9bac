"""Multi-step point forecasters and rolling-origin error bands.

Candidates: seasonal naive (repeat the last season), the seasonal mean (each phase's mean
over the last week: seasonal naive with a week's noise averaged out), a seasonal profile
(the median daily shape of the last week on top of the latest level), the same with a
robust linear trend,
and damped-trend Holt-Winters (statsmodels ETS). :func:`rolling_errors` replays each one
from several past origins; the errors pick the winner and, lead by lead, give its
prediction band, so the band reflects how wrong forecasts really were on this series.
statsmodels is imported inside the function that needs it so the package loads fast.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from novacron.extras import require
from novacron.forecasting._stats import FloatArray, theil_sen

__all__ = ["COMBINATION", "MODELS", "Forecaster", "candidates", "mae", "rolling_errors", "seasonal_naive_mean"]

ForecastFn = Callable[[FloatArray, int, int], FloatArray]
ReplayFn = Callable[[FloatArray, int, int, list[int]], FloatArray]

_PROFILE_DAYS = 7
_TREND_DAYS = 14


@dataclass(frozen=True, slots=True)
class Forecaster:
    """A named point forecaster: ``forecast(history, season, h)`` → ``h`` values.

    ``replay``, if given, computes rolling-origin errors more cheaply than refitting at
    every origin (see :func:`rolling_errors`); ``min_history`` is the fewest points it
    can start from.
    """

    name: str
    forecast: ForecastFn
    replay: ReplayFn | None = None
    min_history: int = 0


def mae(a: FloatArray, b: FloatArray) -> float:
    """Mean absolute error."""
    return float(np.mean(np.abs(a - b)))


def seasonal_naive_mean(y: FloatArray, season: int, h: int) -> FloatArray:
    """Repeat the last season (the last value without a season)."""
    return np.resize(y[-max(1, season) :], h).astype(np.float64)


def seasonal_mean(y: FloatArray, season: int, h: int) -> FloatArray:
    """Each phase's mean over the last week of seasons (fewer if the history is shorter)."""
    m = max(1, season)
    k = min(_PROFILE_DAYS, y.size // m)
    if k < 1:  # not one whole season yet: nothing to average
        return seasonal_naive_mean(y, season, h)
    return np.resize(y[y.size - k * m :].reshape(k, m).mean(axis=0), h).astype(np.float64)


def _profile(y: FloatArray, m: int) -> tuple[FloatArray, FloatArray]:
    """Median within-season shape of the last few seasons, and the deseasonalised series.

    The shape is phase-aligned to the end of ``y`` (its last element is the phase of the
    last observation), so ``np.resize(shape, h)`` continues it.
    """
    seasons = min(_PROFILE_DAYS, y.size // m)
    recent = y[y.size - seasons * m :].reshape(seasons, m)
    shape = np.median(recent - recent.mean(axis=1, keepdims=True), axis=0)
    aligned = shape[(np.arange(y.size) - y.size) % m]
    return shape, y - aligned


def _seasonal_profile(trend: bool) -> ForecastFn:
    def forecast(y: FloatArray, season: int, h: int) -> FloatArray:
        m = max(1, season)
        if m == 1 or y.size < 2 * m:
            shape, flat = np.zeros(1), y
        else:
            shape, flat = _profile(y, m)
        level = float(np.mean(flat[-m:])) if m > 1 else float(np.median(flat[-3:]))
        slope = 0.0
        if trend:
            span = min(flat.size, _TREND_DAYS * m)
            t = np.arange(span, dtype=np.float64)
            slope = theil_sen(*_thin(t, flat[-span:])).slope
        # The level is the mean of the last season, centred half a season back.
        steps = np.arange(1, h + 1, dtype=np.float64) + (m - 1) / 2.0
        return level + slope * steps + np.resize(shape, h)

    return forecast


def _thin(t: FloatArray, y: FloatArray, max_points: int = 400) -> tuple[FloatArray, FloatArray]:
    """Every k-th point, to keep Theil-Sen's pairwise slopes cheap on long histories."""
    k = max(1, y.size // max_points)
    return t[::k], y[::k]


def _ets(y: FloatArray, season: int, h: int) -> FloatArray:
    # Heavy, and only in the `forecast` extra: imported when an ETS forecast is made.
    ExponentialSmoothing = require("statsmodels.tsa.holtwinters", feature="ETS capacity forecasts").ExponentialSmoothing  # noqa: N806

    seasonal = season > 1 and y.size >= 2 * season
    model = ExponentialSmoothing(
        y,
        trend="add",
        damped_trend=True,
        seasonal="add" if seasonal else None,
        seasonal_periods=season if seasonal else None,
        initialization_method="estimated",
    )
    with warnings.catch_warnings():
        # Optimiser convergence chatter; a poor fit shows up in the rolling errors.
        warnings.simplefilter("ignore")
        return np.asarray(model.fit().forecast(h), dtype=np.float64)


MODELS: tuple[Forecaster, ...] = (
    Forecaster("seasonal_naive", seasonal_naive_mean),
    Forecaster("seasonal_mean", seasonal_mean),
    Forecaster("seasonal_profile", _seasonal_profile(trend=False)),
    Forecaster("seasonal_profile_trend", _seasonal_profile(trend=True)),
    Forecaster("holt_winters_damped", _ets),
)


COMBINATION = "combination"


def candidates(season: int) -> tuple[Forecaster, ...]:
    """The forecasters the planner combines: :data:`MODELS`, plus the LSTM if torch is
    installed; on the trace back-tests the combination with it did best (see the docs)."""
    from novacron.forecasting import lstm  # noqa: PLC0415 - cheap, but keeps torch optional

    if not lstm.available():
        return MODELS
    net = lstm.LstmForecaster()
    return (*MODELS, Forecaster("lstm", net.forecast, net.replay, net.min_points(season)))


def origins(n: int, h: int, season: int, count: int, first: int) -> list[int]:
    """Up to ``count`` forecast origins, newest first, none before ``first``, each leaving
    ``h`` points to score."""
    last = n - h
    if last < first:
        return []
    stride = max(max(1, season) // 2, (last - first) // max(1, count - 1)) if count > 1 else 1
    return list(range(last, first - 1, -stride))[:count]


def rolling_errors(model: Forecaster, y: FloatArray, season: int, h: int, starts: list[int]) -> FloatArray:
    """``(len(starts), h)`` errors (actual - forecast) of ``model`` from each origin."""
    if model.replay is not None:
        return model.replay(y, season, h, starts)
    return np.stack([y[o : o + h] - model.forecast(y[:o], season, h) for o in starts])
