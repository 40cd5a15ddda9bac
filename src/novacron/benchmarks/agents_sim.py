"""Simulated parts of ``novacron bench agents``: exhaustion on synthetic leaks, the circuit
breaker on probe streams, and the scaling adjuster against a threshold autoscaler on the
twin's diurnal workload. Every figure runs the real agent code."""

from __future__ import annotations

import itertools
import math
import tempfile
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np

from novacron.agents.base import AgentContext
from novacron.agents.circuit import Breaker, CircuitState
from novacron.agents.exhaustion import ExhaustionAgent, Reading
from novacron.agents.scaling import ScalingAgent, ScalingPolicy
from novacron.clock import FakeClock
from novacron.forecasting.synthetic import LEAK_KINDS, SAFE_KINDS, make_series
from novacron.healing.catalog import new_action
from novacron.model import ActionKind, ActionStatus, Observation, TargetId
from novacron.settings import FleetSpec, TargetSpec
from novacron.store import Store
from novacron.twin.workload import SyntheticWorkload

__all__ = ["circuit_streams", "exhaustion_synthetic", "scaling_flaps"]

_SPEC = FleetSpec(targets=[TargetSpec(name="x", command=["true"], max_replicas=20)])


def _ctx(clock: FakeClock, **kw: Any) -> AgentContext:
    return AgentContext(
        spec=_SPEC,
        clock=clock,
        actions=lambda: (),
        open_incidents=lambda: (),
        pids=lambda _t: (),
        observations=lambda _t: (),
        logs=lambda _t: "",
        **kw,
    )


def _replay(kind: str, seed: int, lead_s: float, every: int) -> tuple[list[float], float, float | None]:
    """Action times of one agent over one series, the series' duration and its exhaustion time."""
    s = make_series(kind, seed=seed)
    clock = FakeClock(0.0)
    agent = ExhaustionAgent(lead_time_s=lead_s)
    ctx = _ctx(clock)
    acted: list[float] = []
    for i, (t, y) in enumerate(zip(s.t, s.y, strict=True)):
        clock.advance(float(t) - clock.now())
        agent.feed("x#0", float(t), {"memory": Reading(float(y), s.limit)})
        if i % every:
            continue
        if agent.judge(ctx, float(t), lead_s).proposals:
            acted.append(float(t))
            agent.forget("x#0")  # a restart frees the resource: the trend starts again
            if s.exhausted_at is not None:
                break
    return acted, float(s.t[-1] - s.t[0]), s.exhausted_at


def exhaustion_synthetic(*, per_kind: int = 20, lead_s: float = 900.0, every: int = 6) -> dict[str, Any]:
    """Share of leaks acted on before the limit; false actions per 1,000 target-hours of healthy series."""
    before, leaks, leads = 0, 0, []
    for kind in LEAK_KINDS:
        for seed in range(per_kind):
            acted, _, exhausted = _replay(kind, seed, lead_s, every)
            leaks += 1
            if acted and exhausted is not None and acted[0] < exhausted:
                before += 1
                leads.append(exhausted - acted[0])
    false, hours = 0, 0.0
    for kind in SAFE_KINDS:
        for seed in range(per_kind):
            acted, duration, _ = _replay(kind, seed, lead_s, every)
            false += len(acted)
            hours += duration / 3600.0
    return {
        "leaks": leaks,
        "acted_before_limit": before,
        "acted_before_limit_share": round(before / leaks, 3),
        "median_lead_s": round(float(np.median(leads)), 1) if leads else None,
        "healthy_target_hours": round(hours, 1),
        "false_actions": false,
        "false_actions_per_1000_target_hours": round(1000.0 * false / hours, 2) if hours else 0.0,
        "lead_time_s": lead_s,
        "agent_every_s": every * 10.0,
    }


def circuit_streams(
    *, trials: int = 200, interval_s: float = 1.0, noise: float = 0.02, seed: int = 0
) -> dict[str, Any]:
    """Probe intervals from an outage's start to an open circuit; false opens on healthy streams."""
    rng = np.random.default_rng(seed)
    delays: list[int] = []
    false_opens, healthy_hours = 0, 0.0
    for _ in range(trials):
        b = Breaker()
        healthy = int(rng.integers(300, 900))
        t = 0.0
        for _ in range(healthy):
            was = b.state
            if b.observe(bool(rng.random() > noise), 0.01, t) is CircuitState.FAILED and was is not CircuitState.FAILED:
                false_opens += 1
            t += interval_s
        healthy_hours += healthy * interval_s / 3600.0
        if b.state is CircuitState.FAILED:
            continue
        for k in range(1, 100):
            if b.observe(False, None, t) is CircuitState.FAILED:
                delays.append(k)
                break
            t += interval_s
    return {
        "trials": trials,
        "opened_within_two_intervals_share": round(sum(d <= 2 for d in delays) / max(len(delays), 1), 3),
        "max_intervals_to_open": max(delays) if delays else None,
        "healthy_probe_failure_rate": noise,
        "false_opens_per_hour": round(false_opens / healthy_hours, 3) if healthy_hours else 0.0,
    }


def _autoscale(
    policy: ScalingPolicy, load: Callable[[float], float], hours: float, step_s: float = 10.0, capacity: float = 100.0
) -> tuple[list[tuple[float, bool]], list[tuple[float, float]]]:
    replicas, last = max(2, policy.min_replicas), -math.inf
    events: list[tuple[float, bool]] = []
    samples: list[tuple[float, float]] = []
    for t in np.arange(0.0, hours * 3600.0, step_s):
        u = load(float(t)) / (replicas * capacity)
        samples.append((float(t), u))
        if t - last < policy.cooldown_s:
            continue
        if u > policy.scale_out_above and replicas < policy.max_replicas:
            replicas, last = replicas + 1, float(t)
            events.append((float(t), True))
        elif u < policy.scale_in_below and replicas > policy.min_replicas:
            replicas, last = replicas - 1, float(t)
            events.append((float(t), False))
    return events, samples


def _flaps(events: list[tuple[float, bool]], window_s: float = 600.0) -> int:
    return sum(1 for a, b in itertools.pairwise(events) if a[1] != b[1] and b[0] - a[0] <= window_s)


def _load(seed: int) -> Callable[[float], float]:
    rng = np.random.default_rng(seed)
    work = SyntheticWorkload(n_groups=1, level=300.0, amplitude=0.5, period_s=6 * 3600.0)
    noise = rng.normal(0.0, 0.12, 200_000)
    return lambda t: float(work.multipliers(t)[0]) * (1.0 + noise[int(t // 10) % noise.size])


def scaling_flaps(*, hours: float = 24.0, seeds: int = 3) -> dict[str, Any]:
    """Flaps of a threshold autoscaler before and after the adjuster's proposal, on fresh load."""
    policy = ScalingPolicy(scale_out_above=0.75, scale_in_below=0.6, cooldown_s=30.0, min_replicas=1, max_replicas=20)
    events, samples = _autoscale(policy, _load(0), hours)
    with tempfile.TemporaryDirectory(prefix="novacron-bench-scaling-") as tmp:
        store = Store.open(f"sqlite:///{Path(tmp) / 's.db'}")
        try:
            for i, (t, out) in enumerate(events):
                a = new_action(ActionKind.SCALE_OUT if out else ActionKind.SCALE_IN, TargetId("x"), key=f"s{i}")
                store.claim_action(a, ActionStatus.VERIFIED, now=t)
                store.set_action_status(a.id, ActionStatus.VERIFIED, started_at=t, finished_at=t + 1)
            records = store.actions(limit=100_000)
        finally:
            store.close()
    obs = [Observation(TargetId("x"), "metrics", t, metrics={"load": u}) for t, u in samples]
    clock = FakeClock(hours * 3600.0)
    agent = ScalingAgent(policy=policy)
    judged = agent.run(replace(_ctx(clock), actions=lambda: records, observations=lambda _t: obs))
    evidence = judged.findings[0].evidence if judged.findings else {}
    proposed = ScalingPolicy(**evidence["proposed_policy"]) if "proposed_policy" in evidence else policy
    before = sum(_flaps(_autoscale(policy, _load(s), hours)[0]) for s in range(1, seeds + 1))
    after = sum(_flaps(_autoscale(proposed, _load(s), hours)[0]) for s in range(1, seeds + 1))
    return {
        "scaling_actions_judged": len(events),
        "accuracy_before": evidence.get("accuracy"),
        "policy_before": asdict(policy),
        "policy_proposed": asdict(proposed),
        "flaps_before": before,
        "flaps_after": after,
        "flap_reduction": round(1.0 - after / before, 3) if before else None,
        "hours_per_run": hours,
        "fresh_load_seeds": seeds,
    }
