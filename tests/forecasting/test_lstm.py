"""The optional LSTM forecaster: used only when torch is installed, never needed otherwise."""

from __future__ import annotations

import numpy as np
import pytest

from novacron.errors import NotEnoughDataError
from novacron.forecasting import lstm
from novacron.forecasting._models import MODELS, candidates
from novacron.forecasting.capacity import forecast_band


def test_without_torch_the_planner_uses_the_classical_models(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lstm, "available", lambda: False)
    assert candidates(24) == MODELS


def test_lstm_learns_a_daily_cycle() -> None:
    pytest.importorskip("torch")
    x = np.arange(24 * 8, dtype=np.float64)
    y = 10 + 3 * np.sin(2 * np.pi * x / 24) + np.random.default_rng(0).normal(0, 0.1, x.size)
    net = lstm.LstmForecaster(hidden=16, epochs=120)
    forecast = net.forecast(y[:-24], 24, 24)
    assert forecast.shape == (24,)
    # Far better than the flat mean: the shape of the day was learned.
    assert np.mean(np.abs(forecast - y[-24:])) < 0.5 * np.mean(np.abs(y[-24:] - y[:-24].mean()))


def test_lstm_joins_the_combination_when_installed() -> None:
    pytest.importorskip("torch")
    x = np.arange(24 * 6, dtype=np.float64)
    y = 10 + 3 * np.sin(2 * np.pi * x / 24) + 0.05 * x
    band = forecast_band(y, 24, 12, n_origins=2)
    assert "lstm" in band.members
    assert "lstm" in band.scores


def test_lstm_refuses_too_short_a_history() -> None:
    pytest.importorskip("torch")
    with pytest.raises(NotEnoughDataError, match="need 80 points"):
        lstm.LstmForecaster().forecast(np.arange(50.0), 24, 5)
