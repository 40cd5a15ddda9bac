"""Learning a remediation policy on the twin: ``novacron learn`` and the learning benchmark.

Faults are injected one at a time into a twin fleet run by the real
:class:`~novacron.runtime.controller.Controller` under simulated time, so every step the
policy takes goes through the same healer, executor and safety gate as in production;
only the targets are simulated. After each fault, whatever the controller did not heal
is repaired at once (as a human would) so the next fault meets a quiet fleet.
"""

from __future__ import annotations

import random
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from novacron.clock import MonotonicClock
from novacron.errors import InputError
from novacron.learning import RemediationPolicy
from novacron.runtime.controller import Controller
from novacron.runtime.faultrun import FaultPlan, FaultTimes, run_plan, twin_injector
from novacron.runtime.simloop import run_simulated
from novacron.runtime.twinfleet import build_twin_simulator
from novacron.runtime.twinspec import measure_timings, twin_of
from novacron.settings import FleetSpec, LearningSpec, ValueCheckSpec
from novacron.store import Store
from novacron.store.learning import DecisionRow, PolicyLog
from novacron.twin.clock import SimClock

__all__ = ["LEARNING_KINDS", "TwinRun", "fault_plans", "mttr_summary", "run_on_twin", "train_on_twin"]

# Six kinds whose best first step differs: restart, restart, rollback, wait, replace, replace.
LEARNING_KINDS = ("crash", "leak", "bad_config", "dependency", "noisy_neighbour", "host_failure")
_FAULT_TIMEOUT_S = 30.0  # simulated: then a human repairs it


@dataclass(frozen=True, slots=True)
class TwinRun:
    """What one run on the twin did."""

    times: FaultTimes
    policy_state: dict[str, Any] | None
    decisions: list[DecisionRow]
    actions: list[int]  # actions taken per fault, in injection order
    first_actions: list[str | None]  # the first step taken for each fault (None: no action), in injection order


def fault_plans(spec: FleetSpec, count: int, *, seed: int, kinds: Sequence[str] = LEARNING_KINDS) -> list[FaultPlan]:
    """``count`` faults drawn uniformly over ``kinds`` and the spec's sim targets."""
    rng = random.Random(seed)
    targets = [t for t in spec.targets if t.kind == "sim"]
    dependents = [t for t in targets if t.depends_on]
    usable = [k for k in kinds if k != "dependency" or dependents]
    if not targets or not usable:
        raise InputError("no sim target to inject into (or no dependent one for dependency faults)", where="targets")
    plans = []
    for _ in range(count):
        kind = rng.choice(usable)
        if kind == "dependency":
            t = rng.choice(dependents)
            plans.append(FaultPlan(kind, t.name, t.depends_on[0], "hang"))
        else:
            t = rng.choice(targets)
            plans.append(FaultPlan(kind, t.name, t.name, kind))
    return plans


def _preload(store_url: str, spec: LearningSpec, state: Mapping[str, Any], now: float) -> None:
    store = Store.open(store_url)
    try:
        PolicyLog(store).save_policy(spec.policy_name, state, source="twin", now=now, promote=True)
    finally:
        store.close()


def run_on_twin(
    spec: FleetSpec,
    plans: Sequence[FaultPlan],
    *,
    policy_state: Mapping[str, Any] | None = None,
    policy: RemediationPolicy | None = None,
    settle_s: float = 1.0,
    poll_s: float = 0.1,
) -> TwinRun:
    """Inject ``plans`` into ``spec``'s twin through the real controller, in simulated time.

    ``policy_state`` is stored first as the promoted policy the controller loads;
    ``policy`` (a learner being trained) takes the place of whatever it loaded. The policy
    learned or measured here acts as itself: the production guard that hands a learned
    policy's steps to the ladder while it is not estimated better (``learning.value_check``)
    is off, as the flap and rate rails are relaxed.
    """
    workdir = Path(tempfile.mkdtemp(prefix="novacron-twin-"))
    store_url = f"sqlite:///{workdir / 'twin.db'}"
    learning = spec.learning.model_copy(update={"value_check": ValueCheckSpec(enabled=False)})
    controller = spec.controller.model_copy(update={"store_url": store_url})
    spec = spec.model_copy(update={"controller": controller, "learning": learning})
    sim = build_twin_simulator(spec)
    clock = SimClock(sim)
    if policy_state is not None:
        _preload(store_url, spec.learning, policy_state, clock.now())

    async def main() -> TwinRun:
        controller = Controller(spec, clock=clock, twin=sim, workdir=workdir, seed=spec.learning.seed or 0)
        twin = controller.twin
        assert twin is not None
        if policy is not None and controller.flow.chooser is not None:
            controller.flow.chooser.policy = policy
        await controller.start()
        try:
            times = await run_plan(
                controller,
                twin_injector(controller),
                plans,
                settle_s=settle_s,
                timeout_s=_FAULT_TIMEOUT_S,
                after=lambda _plan: twin.calm(),
                poll_s=poll_s,
            )
            chooser = controller.flow.chooser
            state = chooser.policy.state() if chooser is not None else None
            taken = [
                controller.store.actions(incident_id=r.incident_id, limit=1000) if r.incident_id else []
                for r in times.results
            ]
            actions = [len(t) for t in taken]
            firsts = [str(min(t, key=lambda a: a.created_at).action.kind) if t else None for t in taken]
            decisions = PolicyLog(controller.store).decisions(limit=10_000_000)
        finally:
            await controller.stop()
        return TwinRun(times, state, decisions, actions, firsts)

    try:
        return run_simulated(main(), clock)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def mttr_summary(times: FaultTimes) -> dict[str, float | None]:
    """p50 and p95 of the healed faults' MTTR (seconds)."""
    values = sorted(v for kind in times.mttr.values() for v in kind)
    if not values:
        return {"p50": None, "p95": None}
    return {q: round(float(np.percentile(values, pct)), 3) for q, pct in (("p50", 50), ("p95", 95))}


def _twin_for(spec: FleetSpec, store_url: str) -> FleetSpec:
    """The spec itself when all its targets are sim; else its twin, timed from its store."""
    if spec.targets and all(t.kind == "sim" for t in spec.targets):
        return spec
    store = Store.open(store_url, create=False)
    try:
        timings = measure_timings(store)
    finally:
        store.close()
    return twin_of(spec, timings, store_url="sqlite:///:memory:")


def train_on_twin(spec: FleetSpec, *, episodes: int, seed: int, store_url: str) -> dict[str, Any]:
    """Learn a policy on ``spec``'s twin from ``episodes`` faults; store it promoted in ``store_url``.

    The learner is the spec's: ``dqn`` trains a deep Q-network (the ``ml`` extra), anything
    else the bandit.
    """
    learner = "dqn" if spec.learning.learner == "dqn" else "bandit"
    learning = spec.learning.model_copy(update={"enabled": True, "learner": "bandit", "explore": True})
    twin = _twin_for(spec, store_url)
    assert twin.twin is not None
    # Training injects its own faults, one at a time: none scheduled by the spec, none at random.
    quiet = twin.twin.model_copy(update={"faults": [], "fault_rate_per_hour": 0.0})
    # A fault every few seconds on the same targets: the flap and rate rails would rightly
    # stop healing, so the twin relaxes them (as the benchmarks do); the others stay.
    flap = twin.policy.flap.model_copy(update={"threshold": 1_000_000})
    policy = twin.policy.model_copy(update={"flap": flap, "max_actions_per_target_per_hour": 1_000_000})
    twin = twin.model_copy(update={"learning": learning, "twin": quiet, "policy": policy})
    mix = [str(k) for k in quiet.fault_mix] if quiet.fault_mix else LEARNING_KINDS
    plans = fault_plans(twin, episodes, seed=seed, kinds=mix)
    extra: dict[str, Any] = {}
    if learner == "dqn":
        from novacron.runtime.dqntrain import train_dqn_on_twin  # noqa: PLC0415 - the ml extra

        state, run, extra = train_dqn_on_twin(twin, plans, seed=seed)
    else:
        run = run_on_twin(twin, plans)
        if run.policy_state is None:
            raise InputError("the twin run kept no policy", where="learning")
        state = run.policy_state
    store = Store.open(store_url)
    try:
        version = PolicyLog(store).save_policy(
            learning.policy_name, state, source=f"twin:{learner}:{episodes}", now=MonotonicClock().now(), promote=True
        )
    finally:
        store.close()
    return {
        "policy": learning.policy_name,
        "learner": learner,
        "version": version,
        "faults": run.times.injected,
        "healed": run.times.healed,
        "mttr_s": mttr_summary(run.times),
        "kinds": list(mix),
        **extra,
    }
