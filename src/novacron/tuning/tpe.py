"""Optuna's samplers (TPE for larger budgets) behind the same ask/tell contract.

Optuna lives in the ``tune`` extra. Categorical choices are handed to Optuna as indices,
so any value (a ladder, a list of action kinds) can be a choice. Trial ``n`` is drawn by a
sampler seeded with (seed, n), so a study rebuilt from a stored history (resumed, or shared
by several workers) asks what an uninterrupted one would, and two workers never repeat
each other's random start-up draws.
"""

from __future__ import annotations

import logging
from typing import Any

from novacron.extras import require
from novacron.tuning.space import Param, SearchSpace
from novacron.tuning.trial import AskTell, Trial, TrialState

__all__ = ["OptunaTPE"]


def _distribution(optuna: Any, p: Param) -> Any:
    dists = optuna.distributions
    if p.kind == "categorical":
        return dists.CategoricalDistribution(list(range(len(p.choices))))
    if p.kind == "int":
        return dists.IntDistribution(int(p.low), int(p.high))
    return dists.FloatDistribution(p.low, p.high, log=p.kind == "log")


class OptunaTPE(AskTell):
    """Optuna's TPE sampler driven by ask/tell; the caller owns the loop."""

    def __init__(self, space: SearchSpace, *, seed: int = 0, n_startup: int = 10) -> None:
        super().__init__(space, seed=seed)
        self._optuna = require("optuna", feature="TPE search")
        logging.getLogger("optuna").setLevel(logging.WARNING)
        self._n_startup = n_startup
        self._study = self._optuna.create_study(direction="minimize", sampler=self._sampler(0))
        self._dists = {p.name: _distribution(self._optuna, p) for p in space.params}
        self._live: dict[int, Any] = {}

    def _sampler(self, number: int) -> Any:
        seed = (self.seed * 1_000_003 + number) % 2**32
        return self._optuna.samplers.TPESampler(seed=seed, n_startup_trials=self._n_startup)

    def _propose(self, number: int) -> dict[str, Any]:
        self._study.sampler = self._sampler(number)
        trial = self._study.ask(self._dists)
        self._live[number] = trial
        return {p.name: self._from_optuna(p, trial.params[p.name]) for p in self.space.params}

    def _observed(self, trial: Trial) -> None:
        failed = trial.state is TrialState.FAILED
        live = self._live.pop(trial.number, None)
        if live is None:  # replayed from a stored study: hand Optuna the finished trial
            frozen = self._optuna.trial.create_trial(
                params=self._to_optuna(trial),
                distributions=self._dists,
                value=None if failed else self.effective_value(trial),
                state=self._optuna.trial.TrialState.FAIL if failed else self._optuna.trial.TrialState.COMPLETE,
            )
            self._study.add_trial(frozen)
        elif failed:
            self._study.tell(live, state=self._optuna.trial.TrialState.FAIL)
        else:
            self._study.tell(live, self.effective_value(trial))

    def _to_optuna(self, trial: Trial) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for p in self.space.params:
            value = trial.params[p.name]
            out[p.name] = p.choices.index(value) if p.kind == "categorical" else value
        return out

    @staticmethod
    def _from_optuna(p: Param, value: Any) -> Any:
        if p.kind == "categorical":
            return p.choices[int(value)]
        return int(value) if p.kind == "int" else float(value)
