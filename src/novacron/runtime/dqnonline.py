"""Online learning for a promoted DQN: the controller keeps training it on real outcomes.

A DQN learned on the twin (:mod:`novacron.runtime.dqntrain`) is evaluated by the
controller with numpy (:class:`~novacron.learning.DqnPolicy`). With ``learning.online``
on (and the ``ml`` extra installed) :class:`DqnOnline` also keeps it learning: every
``interval_s`` it reads the settled decisions of the store's decision log, turns each
incident's steps into transitions (observation: the step's context features; action;
reward; the incident's next step as the next observation, or the end of the episode when
the step healed it or the incident closed), adds the new ones to a stable-baselines3
replay buffer, and runs a few gradient steps of the DQN loss in a worker thread, off the
event loop (inline under simulated time, where a thread's real time would pass as
simulated time). The target network is the one from before each round. The new weights
take the policy's place at once and are stored as a new promoted version
(``source: online``), so a restarted controller starts from them. An operator's mark on
an action adds to its step's reward when the step enters the buffer.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from novacron.clock import Clock
from novacron.extras import require
from novacron.healing.learned import LearnedSteps
from novacron.learning import DqnPolicy, FaultContext, features
from novacron.learning.context import n_features
from novacron.settings import OnlineSpec
from novacron.store.learning import DecisionRow
from novacron.telemetry import get_logger

__all__ = ["DqnOnline", "Transition", "transitions"]

_FEATURE = "online learning for the DQN"
_GAMMA = 0.9  # as on the twin (runtime/dqntrain.py)

Obs = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class Transition:
    """One step of an incident, for the replay buffer."""

    decision_id: str
    obs: Obs
    action: int
    reward: float
    next_obs: Obs
    done: bool


def _obs(context: dict[str, Any] | None) -> Obs:
    if context is None:
        return np.zeros(n_features(), dtype=np.float32)
    return features(FaultContext.from_dict(context)).astype(np.float32)


def transitions(
    rows: Sequence[DecisionRow],
    actions: Sequence[str],
    is_open: Callable[[str], bool],
    marks: Mapping[str, float] | None = None,
) -> list[Transition]:
    """The complete transitions in ``rows`` (settled decisions): a step whose successor is not known yet waits.

    ``marks`` adds operators' feedback to the reward of the step that ran an action (by action id).
    """
    marks = marks or {}
    by_incident: dict[str, list[DecisionRow]] = {}
    for row in rows:
        if row.incident_id is not None and row.reward is not None and row.action in actions:
            by_incident.setdefault(row.incident_id, []).append(row)
    out = []
    for incident, steps in by_incident.items():
        steps.sort(key=lambda r: r.at)
        for i, row in enumerate(steps):
            healed = row.outcome == "verified"
            if i + 1 < len(steps) and not healed:
                nxt, done = steps[i + 1].context, False
            elif healed or not is_open(incident):
                nxt, done = None, True
            else:
                continue  # its next step is still to come
            assert row.reward is not None
            value = row.reward + marks.get(row.action_id or "", 0.0)
            out.append(Transition(row.id, _obs(row.context), actions.index(row.action), value, _obs(nxt), done))
    return out


class _Learner:
    """A stable-baselines3 DQN holding the policy's network, its replay buffer and optimiser."""

    def __init__(self, policy: DqnPolicy, spec: OnlineSpec, seed: int | None) -> None:
        gym = require("gymnasium", feature=_FEATURE)
        sb3 = require("stable_baselines3", feature=_FEATURE)
        logger = require("stable_baselines3.common.logger", feature=_FEATURE)
        self.torch = require("torch", feature=_FEATURE)
        self.actions = list(policy.actions)
        hidden = [w.shape[0] for w, _ in policy.layers[:-1]]
        spaces = gym.spaces

        class _Spaces(gym.Env):  # type: ignore[misc, name-defined]
            """Only the spaces: the environment is the real fleet, seen through the decision log."""

            observation_space = spaces.Box(0.0, 1.0, shape=(n_features(),), dtype=np.float32)
            action_space = spaces.Discrete(len(self.actions))

        self.model = sb3.DQN(
            "MlpPolicy",
            _Spaces(),
            learning_rate=spec.learning_rate,
            buffer_size=spec.buffer_size,
            batch_size=spec.batch_size,
            gamma=_GAMMA,
            policy_kwargs={"net_arch": hidden},
            seed=seed,
            device="cpu",
            verbose=0,
        )
        self.model.set_logger(logger.configure(None, []))
        self._load(policy)
        self.stored = 0

    def _load(self, policy: DqnPolicy) -> None:
        linear = [m for m in self.model.q_net.q_net if hasattr(m, "weight")]
        with self.torch.no_grad():
            for module, (w, b) in zip(linear, policy.layers, strict=True):
                module.weight.copy_(self.torch.as_tensor(w, dtype=self.torch.float32))
                module.bias.copy_(self.torch.as_tensor(b, dtype=self.torch.float32))
        self.model.q_net_target.load_state_dict(self.model.q_net.state_dict())

    def add(self, batch: Sequence[Transition]) -> None:
        for t in batch:
            self.model.replay_buffer.add(
                t.obs[None, :],
                t.next_obs[None, :],
                np.array([t.action]),
                np.array([t.reward]),
                np.array([t.done]),
                [{}],
            )
        self.stored += len(batch)

    def train(self, gradient_steps: int, epsilon: float, seed: int | None) -> DqnPolicy:
        """``gradient_steps`` DQN updates against the network as it was (the target); the new policy."""
        self.model.q_net_target.load_state_dict(self.model.q_net.state_dict())
        self.model.train(gradient_steps=gradient_steps, batch_size=self.model.batch_size)
        layers = []
        for module in self.model.q_net.q_net:
            if hasattr(module, "weight"):
                weight = module.weight.detach().cpu().numpy().astype(np.float64)
                layers.append((weight, module.bias.detach().cpu().numpy().astype(np.float64)))
        return DqnPolicy(self.actions, layers, epsilon=epsilon, seed=seed)


class DqnOnline:
    """Keeps the chooser's DQN learning from the decision log (see the module docstring)."""

    def __init__(
        self, chooser: LearnedSteps, spec: OnlineSpec, clock: Clock, is_open: Callable[[str], bool], *, inline: bool
    ) -> None:
        self.chooser = chooser
        self.spec = spec
        self.clock = clock
        self.is_open = is_open
        self.inline = inline
        self.rounds = 0
        self._seen: set[str] = set()
        self._learner: _Learner | None = None
        self._task: asyncio.Task[None] | None = None
        self._log = get_logger(component="learning")

    def start(self) -> None:
        """Begin the periodic rounds on the running loop."""
        self._task = asyncio.get_running_loop().create_task(self._run(), name="dqn-online")

    async def stop(self) -> None:
        """Stop after the current round."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await self.clock.sleep(self.spec.interval_s)
            try:
                await self.round()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a failed round must not stop healing; the next one retries
                self._log.warning("online dqn round failed", error=repr(exc))

    def _marks(self) -> dict[str, float]:
        """Operators' marks as reward (the bandit's ±``feedback``), summed per action."""
        out: dict[str, float] = {}
        for fb in self.chooser.log.feedback():
            sign = 1.0 if fb.verdict == "good" else -1.0
            out[fb.action_id] = out.get(fb.action_id, 0.0) + sign * self.chooser.weights.feedback
        return out

    async def round(self) -> int | None:
        """Add the new transitions and, with enough of them, train; the stored version, if any."""
        policy = self.chooser.policy
        if not isinstance(policy, DqnPolicy):
            return None  # the ladder (or another learner) acts: nothing to train
        if self._learner is None:
            self._learner = _Learner(policy, self.spec, self.chooser.spec.seed)
        learner = self._learner
        rows = self.chooser.log.decisions(limit=self.spec.buffer_size, settled=True, newest=True)
        marks = self._marks()
        fresh = [t for t in transitions(rows, learner.actions, self.is_open, marks) if t.decision_id not in self._seen]
        learner.add(fresh)
        self._seen.update(t.decision_id for t in fresh)
        if not fresh or learner.stored < self.spec.min_transitions:
            return None

        def train() -> DqnPolicy:
            return learner.train(self.spec.gradient_steps, policy.epsilon, self.chooser.spec.seed)

        trained = train() if self.inline else await asyncio.to_thread(train)
        self.chooser.policy = trained
        self.rounds += 1
        version = self.chooser.log.save_policy(
            self.chooser.spec.policy_name, trained.state(), source="online", now=self.clock.now(), promote=True
        )
        self._log.info(
            "dqn learned online", version=version, transitions=learner.stored, new=len(fresh), rounds=self.rounds
        )
        return version
