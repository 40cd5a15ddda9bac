"""A deep Q-network policy: the Q-function a DQN learned on the twin, evaluated in numpy.

Training (``novacron learn`` with ``learner: dqn``) runs stable-baselines3's DQN over a
gymnasium environment of the twin and needs the ``ml`` extra (torch); see
:mod:`novacron.runtime.dqntrain`. What it leaves is a small multilayer perceptron from the
context's features (:func:`~novacron.learning.context.features`) to one Q-value per
action. :class:`DqnPolicy` keeps its weights as plain arrays, so the controller that uses
a promoted DQN needs numpy only. It chooses the allowed action with the highest Q-value;
exploring, it is epsilon-greedy *among the allowed actions*, and its propensities are
exact. ``update`` leaves the network as it is: a controller keeps a DQN learning from real
outcomes by training a new network on the decision log (:mod:`novacron.runtime.dqnonline`,
the ``ml`` extra) and putting it in this one's place.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from novacron.errors import InputError
from novacron.learning.context import FaultContext, features, n_features
from novacron.learning.policies import STATE_VERSION, Choice

__all__ = ["DqnPolicy"]

FloatArray = npt.NDArray[np.float64]


class DqnPolicy:
    """Greedy (or epsilon-greedy) over a trained Q-network's values, inside the allowed set."""

    name = "dqn"

    def __init__(
        self,
        actions: Sequence[str],
        layers: Sequence[tuple[FloatArray, FloatArray]],
        *,
        epsilon: float = 0.05,
        seed: int | None = None,
    ) -> None:
        """``layers``: (weight ``out × in``, bias ``out``) per linear layer, ReLU between them."""
        if not layers:
            raise InputError("a Q-network needs at least one layer", where="layers")
        if not 0.0 <= epsilon <= 1.0:
            raise InputError(f"must be in [0, 1], got {epsilon}", where="epsilon")
        width = n_features()
        for i, (w, b) in enumerate(layers):
            if w.ndim != 2 or w.shape[1] != width or b.shape != (w.shape[0],) or not np.isfinite(w).all():
                raise InputError(f"layer {i} has shape {w.shape} after width {width}", where="layers")
            width = w.shape[0]
        if width != len(actions):
            raise InputError(f"the network has {width} outputs for {len(actions)} actions", where="actions")
        self.actions = [str(a) for a in actions]
        self.layers = [(np.asarray(w, dtype=np.float64), np.asarray(b, dtype=np.float64)) for w, b in layers]
        self.epsilon = epsilon
        self._rng = np.random.default_rng(seed)

    def q_values(self, context: FaultContext) -> dict[str, float]:
        """Every action's Q-value in ``context``."""
        h = features(context)
        for i, (w, b) in enumerate(self.layers):
            h = w @ h + b
            if i < len(self.layers) - 1:
                h = np.maximum(h, 0.0)
        return dict(zip(self.actions, (float(v) for v in h), strict=True))

    def value(self, context: FaultContext, action: str) -> float:
        """The Q-value of ``action`` (the lowest known one for an action the network lacks)."""
        q = self.q_values(context)
        return q.get(str(action), min(q.values()))

    def _best(self, context: FaultContext, options: Sequence[str]) -> str:
        q = self.q_values(context)
        return max(options, key=lambda a: q.get(a, -np.inf))

    def probabilities(self, context: FaultContext, allowed: Sequence[str], *, explore: bool = True) -> dict[str, float]:
        """Exact choice probabilities over ``allowed``."""
        options = [str(a) for a in allowed]
        if not options:
            return {}
        best = self._best(context, options)
        eps = self.epsilon if explore else 0.0
        return {a: (1.0 - eps) * (a == best) + eps / len(options) for a in options}

    def choose(self, context: FaultContext, allowed: Sequence[str], *, explore: bool = True) -> Choice | None:
        """The allowed action with the highest Q-value (a uniform allowed one with probability epsilon)."""
        options = [str(a) for a in allowed]
        if not options:
            return None
        probs = self.probabilities(context, options, explore=explore)
        pick = options[int(self._rng.choice(len(options), p=[probs[a] for a in options]))]
        return Choice(pick, probs[pick])

    def update(self, context: FaultContext, action: str, reward: float) -> None:
        """Nothing per step: the network changes only by a new one trained on the log (runtime/dqnonline.py)."""
        if not np.isfinite(reward):
            raise InputError(f"reward must be finite, got {reward}", where="reward")

    def state(self) -> dict[str, Any]:
        """Version, actions, epsilon and the layers' weights (JSON-ready)."""
        return {
            "version": STATE_VERSION,
            "kind": "dqn",
            "features": n_features(),
            "actions": list(self.actions),
            "epsilon": self.epsilon,
            "layers": [{"W": w.tolist(), "b": b.tolist()} for w, b in self.layers],
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any], *, seed: int | None = None) -> DqnPolicy:
        """Rebuild from :meth:`state` (InputError naming the field when it does not fit)."""
        if int(state.get("features", -1)) != n_features():
            raise InputError(f"policy has {state.get('features')} features, expected {n_features()}", where="features")
        layers = [
            (np.asarray(layer["W"], dtype=np.float64), np.asarray(layer["b"], dtype=np.float64))
            for layer in list(state.get("layers", []))
        ]
        return cls(list(state["actions"]), layers, epsilon=float(state.get("epsilon", 0.05)), seed=seed)
