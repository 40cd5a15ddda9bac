"""Trials and the ask/tell contract every optimiser follows.

The caller owns the loop: :meth:`AskTell.ask` proposes a configuration as a
:class:`Trial`, the caller evaluates it however it likes (here, on the twin, in a process
pool or on a Dask cluster) and reports back with :meth:`AskTell.tell` or, when the
evaluation broke, :meth:`AskTell.fail`. A failed evaluation is recorded as failed and
never scores: model-based optimisers see it as the worst outcome so far. Several trials
may be asked before any is told (parallel evaluation). :meth:`AskTell.replay` feeds a
stored history back in, which is how a study resumes after its process was killed.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from novacron.errors import InputError
from novacron.tuning.space import SearchSpace

__all__ = ["AskTell", "Trial", "TrialState"]


class TrialState(enum.StrEnum):
    """Where a trial is in its life."""

    RUNNING = "running"
    COMPLETE = "complete"
    FAILED = "failed"


@dataclass(slots=True)
class Trial:
    """One proposed configuration and, once told, how it did."""

    number: int
    params: dict[str, Any]
    state: TrialState = TrialState.RUNNING
    value: float | None = None
    feasible: bool = True
    metrics: dict[str, float] = field(default_factory=dict)
    detail: str = ""

    @property
    def scored(self) -> bool:
        """Complete and within every hard constraint."""
        return self.state is TrialState.COMPLETE and self.feasible and self.value is not None


class AskTell(ABC):
    """Bookkeeping shared by every optimiser; subclasses only propose."""

    def __init__(self, space: SearchSpace, *, seed: int = 0) -> None:
        self.space = space
        self.seed = seed
        self.trials: list[Trial] = []

    # -- the contract ------------------------------------------------------------------
    def ask(self) -> Trial:
        """Propose the next configuration to evaluate."""
        trial = Trial(len(self.trials), self._propose(len(self.trials)))
        self.trials.append(trial)
        return trial

    def tell(
        self,
        number: int,
        value: float,
        *,
        feasible: bool = True,
        metrics: Mapping[str, float] | None = None,
        detail: str = "",
    ) -> Trial:
        """Report a finished evaluation of trial ``number`` (lower is better)."""
        trial = self._running(number)
        trial.state, trial.value, trial.feasible = TrialState.COMPLETE, float(value), feasible
        trial.metrics, trial.detail = dict(metrics or {}), detail
        self._observed(trial)
        return trial

    def fail(self, number: int, detail: str) -> Trial:
        """Report that evaluating trial ``number`` broke; it never scores."""
        trial = self._running(number)
        trial.state, trial.value, trial.feasible, trial.detail = TrialState.FAILED, None, False, detail
        self._observed(trial)
        return trial

    def replay(self, history: Iterable[Trial]) -> list[Trial]:
        """Load a stored study's trials (numbered 0, 1, …); returns those still running, to evaluate again."""
        pending: list[Trial] = []
        for old in sorted(history, key=lambda t: t.number):
            if old.number != len(self.trials):
                raise InputError(f"trial {old.number} is out of order (expected {len(self.trials)})", where="history")
            trial = Trial(old.number, dict(old.params))
            self.trials.append(trial)
            self._proposed(trial)
            if old.state is TrialState.RUNNING:
                pending.append(trial)  # its process died mid-evaluation: same configuration, evaluated again
            elif old.state is TrialState.COMPLETE and old.value is not None:
                self.tell(old.number, old.value, feasible=old.feasible, metrics=old.metrics, detail=old.detail)
            else:
                self.fail(old.number, old.detail or "failed")
        return pending

    # -- results -----------------------------------------------------------------------
    def best(self) -> Trial | None:
        """The lowest-valued feasible complete trial, if any."""
        scored = [t for t in self.trials if t.scored]
        return min(scored, key=lambda t: (t.value, t.number)) if scored else None

    def ranked(self) -> list[Trial]:
        """Feasible complete trials, best first."""
        return sorted((t for t in self.trials if t.scored), key=lambda t: (t.value, t.number))

    @property
    def finished(self) -> int:
        """How many trials were told or failed."""
        return sum(t.state is not TrialState.RUNNING for t in self.trials)

    def effective_value(self, trial: Trial) -> float:
        """What a model learns from a trial: its value, or the worst seen when it failed or broke a constraint."""
        if trial.scored:
            assert trial.value is not None
            return trial.value
        seen = [t.value for t in self.trials if t.state is TrialState.COMPLETE and t.value is not None]
        if not seen:
            return 0.0
        spread = max(seen) - min(seen)
        return max(seen) + max(spread * 0.1, 1e-6)

    def inherit(self, previous: AskTell) -> None:  # noqa: B027 - optional hook
        """Take over what a previous optimiser of the same study learned beyond its trials (a model's fit).

        A study shared by several workers rebuilds its optimiser from the store before each
        batch; this keeps the rebuild from starting the model over.
        """

    # -- for subclasses ----------------------------------------------------------------
    @abstractmethod
    def _propose(self, number: int) -> dict[str, Any]:
        """The configuration for trial ``number``."""

    def _proposed(self, trial: Trial) -> None:  # noqa: B027 - optional hook
        """A replayed trial was asked (model-based optimisers register it)."""

    def _observed(self, trial: Trial) -> None:  # noqa: B027 - optional hook
        """A trial was told or failed."""

    def _running(self, number: int) -> Trial:
        if not 0 <= number < len(self.trials):
            raise InputError(f"no trial {number} was asked", where="trial")
        trial = self.trials[number]
        if trial.state is not TrialState.RUNNING:
            raise InputError(f"trial {number} was already told", where="trial")
        return trial
