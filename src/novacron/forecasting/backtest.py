"""Back-tests: how well the capacity forecaster does on the held-out end of a series.

The errors are reported two ways: ``relative_mae`` is the model's mean absolute error
divided by that of a seasonal-naive forecast over the same hold-out (below 1 means the
model beats "same as last day"); ``mase`` is Hyndman's scaled error, divided by the
in-sample one-season-ahead naive error instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from novacron.forecasting._models import mae, seasonal_naive_mean
from novacron.forecasting._stats import FloatArray
from novacron.forecasting.capacity import DAY_S, forecast_band, prepare

__all__ = ["Backtest", "backtest_capacity"]


@dataclass(frozen=True, slots=True)
class Backtest:
    """Scores of one series' hold-out forecast; ``members`` is each candidate's own
    relative MAE on the same hold-out, for comparing forecasters."""

    model: str
    horizon_days: float
    mae: float
    seasonal_naive_mae: float
    relative_mae: float
    mase: float
    coverage_80: float
    points: int
    members: dict[str, float]


def backtest_capacity(values: FloatArray, *, interval_s: float, test_fraction: float = 0.2) -> Backtest:
    """Forecast the last ``test_fraction`` of a series from the rest, as the planner would."""
    setup = prepare(values, interval_s)
    y, season = setup.y, setup.season
    n_test = max(1, round(y.size * test_fraction))
    train, test = y[:-n_test], y[-n_test:]
    fc = forecast_band(train, season, n_test)
    median, low, high = fc.median, fc.low, fc.high
    m = max(1, season)
    naive = seasonal_naive_mean(train, season, n_test)
    in_sample = float(np.mean(np.abs(train[m:] - train[:-m])))
    model_mae = mae(median, test)
    naive_mae = mae(naive, test)
    return Backtest(
        model=fc.model,
        horizon_days=n_test * setup.step_s / DAY_S,
        mae=model_mae,
        seasonal_naive_mae=naive_mae,
        relative_mae=model_mae / naive_mae if naive_mae > 0 else float("inf"),
        mase=model_mae / in_sample if in_sample > 0 else float("inf"),
        coverage_80=float(np.mean((test >= low) & (test <= high))),
        points=int(n_test),
        members={name: mae(f, test) / naive_mae if naive_mae > 0 else float("inf") for name, f in fc.members.items()},
    )
