"""LSTM forecaster-residual detector (optional ``ml`` extra: torch).

A small LSTM predicts each value from the ``lookback`` values before it; the score is the
prediction error standardised by its exponentially weighted mean and spread, as for
:class:`~novacron.detectors.smoothing.EWMA`. The network is trained on the last
``train_size`` values every ``refit_every`` learned points, at fixed counts and with a
seed derived from ``seed`` and the refit number, so streaming and batch runs train the
same networks; between refits the batch path predicts every point in one forward pass.
torch is imported only when the first fit happens, and the detector is registered only
when torch is installed.
"""

from __future__ import annotations

import importlib.util
import math
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from novacron.detectors._ew import EWState, ew_update
from novacron.detectors.base import (
    Detector,
    FloatArray,
    RefitChunks,
    check_positive,
    clip_value,
    finish_score,
    register,
)
from novacron.extras import require

__all__ = ["LSTMDetector"]


@contextmanager
def _one_thread() -> Iterator[None]:
    """Run torch single-threaded: for matrices this small, handing work to other threads
    costs more than the arithmetic (25x slower training measured on a busy 2-core host)."""
    torch = require("torch", feature="the LSTM detector")

    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(prev)


def _build(lookback: int, hidden: int, seed: int) -> Any:
    torch = require("torch", feature="the LSTM detector")
    module: Any = torch.nn.Module  # a base class only known at run time

    class Net(module):  # type: ignore[misc,unused-ignore]  # Any without torch stubs
        def __init__(self) -> None:
            super().__init__()
            self.lstm = torch.nn.LSTM(1, hidden, batch_first=True)
            self.head = torch.nn.Linear(hidden, 1)

        def forward(self, x: Any) -> Any:
            out, _ = self.lstm(x.unsqueeze(-1))
            return self.head(out[:, -1, :]).squeeze(-1)

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return Net().double()


def _train(net: Any, windows: FloatArray, targets: FloatArray, epochs: int, lr: float, seed: int) -> None:
    torch = require("torch", feature="the LSTM detector")

    x = torch.from_numpy(windows)
    y = torch.from_numpy(targets)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    with _one_thread():
        for _ in range(epochs):
            for idx in torch.randperm(x.shape[0], generator=gen).split(64):  # type: ignore[no-untyped-call,unused-ignore]
                opt.zero_grad()
                loss = torch.nn.functional.mse_loss(net(x[idx]), y[idx])
                loss.backward()  # type: ignore[no-untyped-call,unused-ignore]
                opt.step()


def _predict(net: Any, windows: FloatArray) -> FloatArray:
    torch = require("torch", feature="the LSTM detector")

    with torch.no_grad(), _one_thread():
        return np.asarray(net(torch.from_numpy(np.ascontiguousarray(windows))).numpy(), dtype=np.float64)


class LSTMDetector(RefitChunks, Detector):
    """Standardised one-step-ahead LSTM forecast error (0 until the first fit)."""

    default_threshold = 4.0

    def __init__(
        self,
        *,
        lookback: int = 24,
        hidden: int = 16,
        train_size: int = 1500,
        refit_every: int = 2000,
        min_train: int = 400,
        epochs: int = 3,
        lr: float = 0.01,
        alpha: float = 0.05,
        min_scale: float = 1e-9,
        seed: int = 0,
    ) -> None:
        for name, v in (
            ("lookback", lookback),
            ("hidden", hidden),
            ("train_size", train_size),
            ("refit_every", refit_every),
            ("min_train", min_train),
            ("epochs", epochs),
            ("lr", lr),
            ("alpha", alpha),
            ("min_scale", min_scale),
        ):
            check_positive(name, v)
        self.lookback = int(lookback)
        self.hidden = int(hidden)
        self.train_size = int(train_size)
        self.refit_every = int(refit_every)
        self.min_train = int(min_train)
        self.epochs = int(epochs)
        self.lr = lr
        self.alpha = alpha
        self.min_scale = min_scale
        self.seed = int(seed)
        self._hist: deque[float] | None = None
        self._net: Any = None
        self._norm = (0.0, 1.0)
        self._since_fit = 0
        self._fits = 0
        self._res = EWState()
        self._cache: tuple[float, float | None] | None = None

    def __getstate__(self) -> dict[str, Any]:
        # The network class is defined lazily (torch is optional), so pickle its weights.
        state = dict(self.__dict__)
        if self._net is not None:
            state["_net"] = {k: v.numpy().copy() for k, v in self._net.state_dict().items()}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        weights = state.get("_net")
        self.__dict__.update(state)
        if weights is not None:
            torch = require("torch", feature="the LSTM detector")

            net = _build(self.lookback, self.hidden, 0)
            net.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()})
            self._net = net

    def _state(self) -> deque[float]:
        if self._hist is None:
            self._hist = deque(maxlen=self.train_size)
        return self._hist

    def _fit(self) -> None:
        hist = np.asarray(self._state(), dtype=np.float64)
        mu = float(hist.mean())
        sd = max(float(hist.std()), self.min_scale, 1e-12 * abs(mu))
        z = (hist - mu) / sd
        win = np.lib.stride_tricks.sliding_window_view(z, self.lookback + 1)
        seed = self.seed * 1_000_003 + self._fits
        net = _build(self.lookback, self.hidden, seed)
        _train(net, np.array(win[:, :-1]), np.array(win[:, -1]), self.epochs, self.lr, seed)
        self._net, self._norm = net, (mu, sd)
        self._fits += 1
        self._since_fit = 0

    def _ready_to_fit(self) -> bool:
        need = self.min_train if self._net is None else self.refit_every
        return self._since_fit >= need and len(self._state()) >= max(self.min_train, self.lookback + 2)

    def _residual(self, x: float) -> float | None:
        # score_one and learn_one both need the forecast for the same x: run the net once.
        if self._cache is not None and self._cache[0] == x:
            return self._cache[1]
        r = self._forecast_error(x)
        self._cache = (x, r)
        return r

    def _forecast_error(self, x: float) -> float | None:
        hist = self._state()
        if self._net is None or len(hist) < self.lookback:
            return None
        mu, sd = self._norm
        recent = np.asarray(list(hist)[-self.lookback :], dtype=np.float64)
        pred = _predict(self._net, ((recent - mu) / sd)[None, :])[0]
        return (x - mu) / sd - float(pred)

    def learn_one(self, x: float) -> None:
        """Fold the forecast error into its running spread, remember ``x``, refit when due."""
        if not math.isfinite(x):
            return
        x = clip_value(x)
        r = self._residual(x)
        if r is not None:
            ew_update(self._res, r, self.alpha)
        self._cache = None
        self._state().append(x)
        self._since_fit += 1
        if self._ready_to_fit():
            self._fit()

    def score_one(self, x: float) -> float:
        """How many spreads the forecast missed ``x`` by (0 before 30 residuals)."""
        if not math.isfinite(x) or self._res.n < 30:
            return 0.0
        r = self._residual(clip_value(x))
        if r is None:
            return 0.0
        s = self._res
        return finish_score(abs(r - s.mean) / max(math.sqrt(s.var), 1e-9))

    def _chunk(self, good: FloatArray, i: int, scores: FloatArray) -> int:
        hist = self._state()
        if self._net is None or len(hist) < self.lookback:
            scores[i] = self.score_one(float(good[i]))
            self.learn_one(float(good[i]))
            return i + 1
        j = int(min(good.shape[0], i + max(self.refit_every - self._since_fit, 1)))
        self._cache = None
        mu, sd = self._norm
        seq = (np.concatenate([np.asarray(hist, dtype=np.float64)[-self.lookback :], good[i:j]]) - mu) / sd
        win = np.lib.stride_tricks.sliding_window_view(seq, self.lookback + 1)
        resid = win[:, -1] - _predict(self._net, win[:, :-1])
        for k, r in enumerate(resid.tolist()):  # the spread recursion is cheap; keep it exact
            s = self._res
            if s.n >= 30:
                scores[i + k] = abs(r - s.mean) / max(math.sqrt(s.var), 1e-9)
            ew_update(s, r, self.alpha)
        hist.extend(good[i:j].tolist())
        self._since_fit += j - i
        self._cache = None
        if self._ready_to_fit():
            self._fit()
        return j


# Registered only where torch is installed, so the registry (and the conformance suite)
# never offers a detector that cannot run.
if importlib.util.find_spec("torch") is not None:
    register("lstm")(LSTMDetector)
