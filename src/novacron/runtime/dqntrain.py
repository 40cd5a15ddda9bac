"""Training a DQN remediation policy on the twin: stable-baselines3 over a gymnasium environment.

The environment *is* the twin run by the real controller: faults are injected one at a
time into a twin fleet (:func:`~novacron.runtime.training.run_on_twin`), and every step the
healer asks its policy for is one environment step. An episode is one incident: the
observation is the decision-time context's features, the action one of the learner's
actions, the reward the step's reward (:func:`~novacron.learning.reward`), and the
episode ends when the next incident asks for its first step. The controller runs on its
simulated event loop in a worker thread; its policy (:class:`_Bridge`) hands each
decision to the agent and waits for the answer, so simulated time stands still while
the network learns. An action the safety mask does not allow now (one already tried)
is replaced by the first allowed one, and its reward carries a penalty, so the agent
learns to stay inside the mask. Needs the ``ml`` extra (torch, gymnasium,
stable-baselines3); what it returns is a :class:`~novacron.learning.DqnPolicy` state,
which the controller evaluates with numpy alone.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from novacron.extras import require
from novacron.learning import Choice, DqnPolicy, FaultContext, features
from novacron.learning.context import n_features
from novacron.runtime.faultrun import FaultPlan
from novacron.runtime.training import TwinRun, run_on_twin
from novacron.settings import FleetSpec

__all__ = ["INVALID_PENALTY", "train_dqn_on_twin"]

INVALID_PENALTY = 10.0  # the agent picked an action outside the mask (the first allowed one ran)
_FEATURE = "the DQN learner"

Obs = npt.NDArray[np.float32]


class _Bridge:
    """The controller's policy during training: each choice is the agent's (see the module docstring)."""

    name = "dqn"

    def __init__(self, actions: Sequence[str]) -> None:
        self.actions = [str(a) for a in actions]
        self.to_agent: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.to_controller: queue.Queue[int | None] = queue.Queue()
        self.done = threading.Event()  # training is over: answer without asking
        self.decisions = 0
        self.invalid = 0

    def choose(self, context: FaultContext, allowed: Sequence[str], *, explore: bool = True) -> Choice | None:
        options = [str(a) for a in allowed]
        if not options:
            return None
        index = None
        if not self.done.is_set():
            self.to_agent.put(("choose", context))
            index = self.to_controller.get()
        self.decisions += 1
        action = self.actions[index] if index is not None else options[0]
        if action not in options:
            self.invalid += 1
            self.to_agent.put(("penalty", INVALID_PENALTY))
            action = options[0]
        return Choice(action, 1.0)

    def update(self, context: FaultContext, action: str, reward: float) -> None:
        self.to_agent.put(("reward", reward))

    def probabilities(self, context: FaultContext, allowed: Sequence[str], *, explore: bool = True) -> dict[str, float]:
        return {str(a): float(i == 0) for i, a in enumerate(allowed)}

    def value(self, context: FaultContext, action: str) -> float:
        return 0.0

    def state(self) -> dict[str, Any]:
        return {"kind": "dqn-training"}


class _Episodes:
    """The gymnasium protocol over the bridge's messages (wrapped in a ``gymnasium.Env`` below)."""

    def __init__(self, bridge: _Bridge) -> None:
        self.bridge = bridge
        self.pending: FaultContext | None = None
        self.ended = False
        self.episodes = 0

    def _obs(self, context: FaultContext | None) -> Obs:
        if context is None:
            return np.zeros(n_features(), dtype=np.float32)
        return features(context).astype(np.float32)

    def reset(self) -> Obs:
        while self.pending is None and not self.ended:
            kind, body = self.bridge.to_agent.get()
            if kind == "choose":
                self.pending = body
            elif kind == "end":
                self.ended = True
        context, self.pending = self.pending, None
        self.episodes += 1
        return self._obs(context)

    def step(self, action: int) -> tuple[Obs, float, bool, bool]:
        """(observation, reward, terminated, truncated)."""
        if self.ended:
            return self._obs(None), 0.0, False, True
        self.bridge.to_controller.put(int(action))
        total = 0.0
        while True:
            kind, body = self.bridge.to_agent.get()
            if kind == "reward":
                total += float(body)
            elif kind == "penalty":
                total -= float(body)
            elif kind == "end":
                self.ended = True
                return self._obs(None), total, False, True
            elif kind == "choose":
                if body.tried:  # the same incident's next step
                    return self._obs(body), total, False, False
                self.pending = body  # the next incident: this one is over
                return self._obs(None), total, True, False


def _env_class(gym: Any) -> Any:
    spaces = gym.spaces

    class TwinHealingEnv(gym.Env):  # type: ignore[misc]
        """One incident per episode on the controller-run twin."""

        def __init__(self, episodes: _Episodes, n_actions: int) -> None:
            super().__init__()
            self.episodes = episodes
            self.observation_space = spaces.Box(0.0, 1.0, shape=(n_features(),), dtype=np.float32)
            self.action_space = spaces.Discrete(n_actions)

        def reset(self, *, seed: int | None = None, options: Any = None) -> tuple[Obs, dict[str, Any]]:
            super().reset(seed=seed)
            return self.episodes.reset(), {}

        def step(self, action: Any) -> tuple[Obs, float, bool, bool, dict[str, Any]]:
            obs, reward, terminated, truncated = self.episodes.step(int(action))
            return obs, reward, terminated, truncated, {}

    return TwinHealingEnv


def _layers(q_net: Any) -> list[tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]]:
    """The linear layers of stable-baselines3's Q-network (ReLU between them), as arrays."""
    out = []
    for module in q_net.q_net:
        weight = getattr(module, "weight", None)
        if weight is not None:
            out.append((weight.detach().cpu().numpy().astype(np.float64), module.bias.detach().cpu().numpy()))
    return out


def train_dqn_on_twin(
    spec: FleetSpec, plans: Sequence[FaultPlan], *, seed: int = 0, hidden: int = 64
) -> tuple[dict[str, Any], TwinRun, dict[str, int]]:
    """Train a DQN on ``plans`` injected into ``spec``'s twin; (policy state, the run, counts).

    ``spec`` must have its ``learning`` block enabled (its ``actions`` are the DQN's).
    """
    gym = require("gymnasium", feature=_FEATURE)
    sb3 = require("stable_baselines3", feature=_FEATURE)
    callbacks = require("stable_baselines3.common.callbacks", feature=_FEATURE)
    actions = [str(a) for a in spec.learning.actions]
    bridge = _Bridge(actions)
    episodes = _Episodes(bridge)
    result: dict[str, TwinRun] = {}
    failed: list[BaseException] = []

    def controller() -> None:
        try:
            result["run"] = run_on_twin(spec, plans, policy=bridge)
        except BaseException as exc:  # reported in the caller's thread
            failed.append(exc)
        finally:
            bridge.to_agent.put(("end", None))

    class _StopAtEnd(callbacks.BaseCallback):  # type: ignore[misc, name-defined]
        def _on_step(self) -> bool:
            return not episodes.ended

    worker = threading.Thread(target=controller, name="dqn-twin", daemon=True)
    worker.start()
    env = _env_class(gym)(episodes, len(actions))
    model = sb3.DQN(
        "MlpPolicy",
        env,
        learning_rate=1e-3,
        buffer_size=20_000,
        learning_starts=min(100, max(10, len(plans) // 4)),
        batch_size=64,
        gamma=0.9,
        train_freq=1,
        target_update_interval=250,
        exploration_fraction=0.35,  # of 3 steps per fault: epsilon is down after about one step per fault
        exploration_final_eps=0.05,
        policy_kwargs={"net_arch": [hidden, hidden]},
        seed=seed,
        device="cpu",
        verbose=0,
    )
    try:
        model.learn(total_timesteps=3 * max(1, len(plans)) + 50, callback=_StopAtEnd())
    finally:
        bridge.done.set()
        bridge.to_controller.put(None)  # a choice still waiting gets the first allowed action
        worker.join()
    if failed:
        raise failed[0]
    policy = DqnPolicy(actions, _layers(model.q_net), epsilon=0.05, seed=seed)
    counts = {"decisions": bridge.decisions, "outside_mask": bridge.invalid, "episodes": episodes.episodes}
    return policy.state(), result["run"], counts
