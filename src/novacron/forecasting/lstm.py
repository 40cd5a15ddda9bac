"""An LSTM multi-step forecaster (optional ``ml`` extra: torch).

It reads the last two cycles and emits the whole next cycle at once (direct multi-output,
which avoids feeding its own one-step errors back in within a cycle); longer horizons
append each predicted cycle and go again. Inputs are standardised on the history it is
given. torch is imported only when a forecast is asked for; :func:`available` says
whether it can be.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Any

import numpy as np

from novacron.errors import NotEnoughDataError
from novacron.extras import require
from novacron.forecasting._stats import FloatArray

__all__ = ["LstmForecaster", "available"]


def available() -> bool:
    """Whether torch is installed (the ``ml`` extra)."""
    return importlib.util.find_spec("torch") is not None


@dataclass(frozen=True, slots=True)
class LstmForecaster:
    """Train-on-call LSTM: ``forecast(y, season, h)`` fits on ``y`` and predicts ``h`` steps.

    Small by design (one layer, ``hidden`` units, full-batch Adam for ``epochs``) so a
    month of hourly points trains in seconds on one CPU thread; ``seed`` fixes the result.
    """

    hidden: int = 32
    epochs: int = 150
    learning_rate: float = 0.01
    seed: int = 0

    @staticmethod
    def min_points(season: int) -> int:
        """The shortest history it trains on: two cycles of input, one of output, some slack."""
        return 3 * max(1, season) + 8

    def forecast(self, y: FloatArray, season: int, h: int) -> FloatArray:
        """Fit on ``y`` and forecast ``h`` steps."""
        return self._predict(self._train(y, season), y, h)

    def replay(self, y: FloatArray, season: int, h: int, starts: list[int]) -> FloatArray:
        """Errors from each origin in ``starts``, training once on the data before all of them.

        One fit instead of one per origin keeps replays affordable; the model still never
        sees data at or after an origin it forecasts from.
        """
        state = self._train(y[: min(starts)], season)
        return np.stack([y[o : o + h] - self._predict(state, y[:o], h) for o in starts])

    def _train(self, y: FloatArray, season: int) -> _State:
        torch = require("torch", feature="the LSTM forecaster")

        out = max(1, season)
        lookback = 2 * out
        if y.size < self.min_points(season):
            raise NotEnoughDataError(f"not enough history: need {self.min_points(season)} points for the LSTM")
        torch.manual_seed(self.seed)
        torch.set_num_threads(1)  # shares the machine with the control loop
        mean, std = float(np.mean(y)), float(np.std(y)) or 1.0
        z = (y - mean) / std
        idx = np.arange(z.size - lookback - out + 1)
        x = torch.tensor(np.stack([z[i : i + lookback] for i in idx])[:, :, None], dtype=torch.float32)
        target = torch.tensor(np.stack([z[i + lookback : i + lookback + out] for i in idx]), dtype=torch.float32)
        net = _Net(torch, self.hidden, out)
        opt = torch.optim.Adam(net.parameters(), lr=self.learning_rate)
        for _ in range(self.epochs):
            opt.zero_grad()
            loss: Any = torch.nn.functional.mse_loss(net(x), target)
            loss.backward()
            opt.step()
        return _State(net=net, mean=mean, std=std, lookback=lookback)

    @staticmethod
    def _predict(state: _State, y: FloatArray, h: int) -> FloatArray:
        torch = require("torch", feature="the LSTM forecaster")

        history = list((y[-state.lookback :] - state.mean) / state.std)
        produced: list[float] = []
        with torch.no_grad():
            while len(produced) < h:
                window = torch.tensor(np.asarray(history[-state.lookback :])[None, :, None], dtype=torch.float32)
                step = state.net(window)[0].numpy().astype(np.float64).tolist()
                produced += step
                history += step
        return np.asarray(produced[:h]) * state.std + state.mean


@dataclass(frozen=True, slots=True)
class _State:
    net: _Net
    mean: float
    std: float
    lookback: int


class _Net:
    """LSTM → linear head over the last hidden state (built on the torch module given)."""

    def __init__(self, torch: Any, hidden: int, out: int) -> None:
        nn = torch.nn
        self.lstm = nn.LSTM(input_size=1, hidden_size=hidden, batch_first=True)
        self.head = nn.Linear(hidden, out)

    def parameters(self) -> list[Any]:
        return [*self.lstm.parameters(), *self.head.parameters()]

    def __call__(self, x: Any) -> Any:
        seq, _ = self.lstm(x)
        return self.head(seq[:, -1, :])
