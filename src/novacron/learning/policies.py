"""Remediation policies with one contract: ``choose(context, allowed)`` and ``update(...)``.

:class:`LadderPolicy` is today's static ladder (restart → replace → a human).
:class:`ThompsonPolicy` is a linear Thompson-sampling bandit: per action, a Bayesian
linear model of the step's reward over the context's features. It starts from the ladder
as its prior (the ladder's first step is expected to be the best, its second the next…),
so before any outcome it behaves like the ladder, and it explores only among the actions
it is handed as allowed: the caller (the healing flow) masks everything the safety gate
would not allow. Propensities — the probability the policy had of choosing what it chose
— are exact for the greedy choice and estimated from draws otherwise; they are what lets
a logged decision be re-scored offline for another policy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple, Protocol

import numpy as np
import numpy.typing as npt

from novacron.errors import InputError
from novacron.learning.context import FaultContext, features, n_features

__all__ = ["STATE_VERSION", "Choice", "LadderPolicy", "RemediationPolicy", "ThompsonPolicy", "policy_from_state"]

STATE_VERSION = 1
_PROPENSITY_DRAWS = 512
_LADDER_PRIOR = (-3.0, -8.0)  # expected reward of the ladder's first and second step
_OFF_LADDER_PRIOR = -15.0  # an action the ladder never takes: assumed worse until seen


class Choice(NamedTuple):
    """The chosen action and the probability the policy had of choosing it."""

    action: str
    propensity: float


class RemediationPolicy(Protocol):
    """Chooses the next remediation step for a fault, and learns from how it went."""

    name: str

    def choose(self, context: FaultContext, allowed: Sequence[str], *, explore: bool = True) -> Choice | None:
        """One of ``allowed`` (never anything else), or None when none fits."""
        ...

    def update(self, context: FaultContext, action: str, reward: float) -> None:
        """Learn from the reward of ``action`` taken in ``context``."""
        ...

    def probabilities(self, context: FaultContext, allowed: Sequence[str], *, explore: bool = True) -> dict[str, float]:
        """The probability of choosing each allowed action (for off-policy evaluation)."""
        ...

    def value(self, context: FaultContext, action: str) -> float:
        """The expected reward of ``action`` in ``context`` (the model of doubly robust estimates)."""
        ...

    def state(self) -> dict[str, Any]:
        """A versioned, JSON-ready snapshot (``policy_from_state`` reads it back)."""
        ...


class LadderPolicy:
    """The static ladder: its first untried step that is allowed; deterministic."""

    name = "ladder"

    def __init__(self, ladder: Sequence[str]) -> None:
        self.ladder = [str(a) for a in ladder if str(a) != "escalate"]

    def choose(self, context: FaultContext, allowed: Sequence[str], *, explore: bool = True) -> Choice | None:
        """The next ladder step not tried yet, if the gate allows it."""
        for step in self.ladder:
            if step not in context.tried:
                return Choice(step, 1.0) if step in allowed else None
        return None

    def update(self, context: FaultContext, action: str, reward: float) -> None:
        """The ladder does not learn."""

    def probabilities(self, context: FaultContext, allowed: Sequence[str], *, explore: bool = True) -> dict[str, float]:
        """1 for the ladder's step, 0 for the rest."""
        choice = self.choose(context, allowed)
        return {a: float(choice is not None and a == choice.action) for a in allowed}

    def value(self, context: FaultContext, action: str) -> float:
        """The prior it embodies: the earlier the step, the better."""
        return _prior_for(action, self.ladder)

    def state(self) -> dict[str, Any]:
        """Version, kind and the ladder."""
        return {"version": STATE_VERSION, "kind": "ladder", "ladder": list(self.ladder)}


def _prior_for(action: str, ladder: Sequence[str]) -> float:
    if action in ladder:
        rank = list(ladder).index(action)
        return _LADDER_PRIOR[min(rank, len(_LADDER_PRIOR) - 1)]
    return _OFF_LADDER_PRIOR


class ThompsonPolicy:
    """Linear Thompson sampling over context features, one model per action, ladder prior."""

    name = "bandit"

    def __init__(
        self,
        actions: Sequence[str],
        *,
        ladder: Sequence[str] = ("restart", "replace"),
        prior_strength: float = 1.0,
        noise: float = 6.0,  # rewards spread over −1…−17 a step (−117 rolled back): 3 explored too little
        seed: int | None = None,
    ) -> None:
        if prior_strength <= 0 or noise <= 0:
            raise InputError("prior_strength and noise must be > 0", where="bandit")
        self.ladder = [str(a) for a in ladder if str(a) != "escalate"]
        self.prior_strength = prior_strength
        self.noise = noise
        self.updates = 0
        self._rng = np.random.default_rng(seed)
        self._a: dict[str, npt.NDArray[np.float64]] = {}
        self._b: dict[str, npt.NDArray[np.float64]] = {}
        for action in actions:
            self._arm(str(action))

    @property
    def actions(self) -> list[str]:
        """Every action the policy has a model for."""
        return list(self._a)

    def _arm(self, action: str) -> None:
        if action in self._a:
            return
        d = n_features()
        self._a[action] = self.prior_strength * np.eye(d)
        prior = np.zeros(d)
        prior[0] = _prior_for(action, self.ladder)  # the bias carries the ladder's prior
        self._b[action] = self.prior_strength * prior

    def _posterior(self, x: npt.NDArray[np.float64], action: str) -> tuple[float, float]:
        """Mean and standard deviation of ``action``'s reward at features ``x``."""
        self._arm(action)
        a_inv_x = np.linalg.solve(self._a[action], x)
        mean = float(a_inv_x @ self._b[action])
        return mean, self.noise * float(np.sqrt(max(float(x @ a_inv_x), 0.0)))

    def value(self, context: FaultContext, action: str) -> float:
        """Posterior mean reward."""
        return self._posterior(features(context), action)[0]

    def choose(self, context: FaultContext, allowed: Sequence[str], *, explore: bool = True) -> Choice | None:
        """A posterior draw's best allowed action (the mean's best when not exploring)."""
        options = [str(a) for a in allowed]
        if not options:
            return None
        x = features(context)
        stats = np.array([self._posterior(x, a) for a in options])
        if not explore:
            best = int(np.argmax(stats[:, 0]))
            return Choice(options[best], 1.0)
        draw = self._rng.normal(stats[:, 0], stats[:, 1])
        best = int(np.argmax(draw))
        return Choice(options[best], self._propensities(stats)[best])

    def _propensities(self, stats: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        draws = self._rng.normal(stats[:, 0:1], stats[:, 1:2], size=(len(stats), _PROPENSITY_DRAWS))
        wins = np.bincount(np.argmax(draws, axis=0), minlength=len(stats)).astype(np.float64)
        # Never report 0 for something that was chosen: smooth by half a draw.
        return (wins + 0.5) / (_PROPENSITY_DRAWS + 0.5 * len(stats))

    def probabilities(self, context: FaultContext, allowed: Sequence[str], *, explore: bool = True) -> dict[str, float]:
        """Choice probabilities over ``allowed`` (estimated from draws when exploring)."""
        options = [str(a) for a in allowed]
        if not options:
            return {}
        x = features(context)
        stats = np.array([self._posterior(x, a) for a in options])
        if not explore:
            best = int(np.argmax(stats[:, 0]))
            return {a: float(i == best) for i, a in enumerate(options)}
        return dict(zip(options, (float(p) for p in self._propensities(stats)), strict=True))

    def update(self, context: FaultContext, action: str, reward: float) -> None:
        """Bayesian linear regression update of ``action``'s model."""
        if not np.isfinite(reward):
            raise InputError(f"reward must be finite, got {reward}", where="reward")
        self._arm(action)
        x = features(context)
        self._a[action] += np.outer(x, x)
        self._b[action] += reward * x
        self.updates += 1

    def state(self) -> dict[str, Any]:
        """Version, settings and every action's model."""
        return {
            "version": STATE_VERSION,
            "kind": "bandit",
            "features": n_features(),
            "ladder": list(self.ladder),
            "prior_strength": self.prior_strength,
            "noise": self.noise,
            "updates": self.updates,
            "arms": {a: {"A": self._a[a].tolist(), "b": self._b[a].tolist()} for a in self._a},
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any], *, seed: int | None = None) -> ThompsonPolicy:
        """Rebuild from :meth:`state` (InputError naming the field when it does not fit)."""
        if int(state.get("features", -1)) != n_features():
            raise InputError(f"policy has {state.get('features')} features, expected {n_features()}", where="features")
        policy = cls(
            [],
            ladder=list(state.get("ladder", [])),
            prior_strength=float(state.get("prior_strength", 1.0)),
            noise=float(state.get("noise", 6.0)),
            seed=seed,
        )
        d = n_features()
        for action, arm in dict(state.get("arms", {})).items():
            a, b = np.asarray(arm["A"], dtype=np.float64), np.asarray(arm["b"], dtype=np.float64)
            if a.shape != (d, d) or b.shape != (d,) or not (np.isfinite(a).all() and np.isfinite(b).all()):
                raise InputError(f"arm {action!r} is malformed", where="arms")
            policy._a[str(action)], policy._b[str(action)] = a, b
        policy.updates = int(state.get("updates", 0))
        return policy


def policy_from_state(state: Any, *, seed: int | None = None) -> RemediationPolicy:
    """A policy from its stored snapshot; InputError naming the field when it is not one."""
    if not isinstance(state, Mapping):
        raise InputError("a stored policy must be a mapping", where="policy")
    version = state.get("version")
    if version != STATE_VERSION:
        raise InputError(f"policy version {version!r} is not {STATE_VERSION}", where="policy.version")
    kind = state.get("kind")
    try:
        if kind == "ladder":
            return LadderPolicy(list(state["ladder"]))
        if kind == "bandit":
            return ThompsonPolicy.from_state(state, seed=seed)
        if kind == "dqn":
            from novacron.learning.dqn import DqnPolicy  # noqa: PLC0415 - it imports this module

            return DqnPolicy.from_state(state, seed=seed)
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"malformed {kind} policy: {exc}", where="policy") from exc
    raise InputError(f"unknown learner {kind!r} (ladder, bandit, dqn)", where="policy.kind")
