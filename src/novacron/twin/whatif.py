"""What-if: predict what a set of actions (and hypothetical faults) does to the fleet.

``what_if(sim, actions, horizon_s)`` forks the present state (a vectorised copy of every
array, no healer, no future random events), applies the actions, runs the physics for the
horizon and reports availability against an SLO, latency, utilisation, cost and risk.
Cheap enough to call per remediation: the fork is a handful of array copies and the
horizon can run on a coarser step.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from novacron.errors import InputError
from novacron.twin.faults import TwinAction, TwinFault, parse_action, parse_fault
from novacron.twin.sim import Simulator
from novacron.twin.state import VmStatus

__all__ = ["CostModel", "PlannedAction", "WhatIfResult", "rank_actions", "time_to_healthy", "what_if"]


@dataclass(frozen=True, slots=True)
class PlannedAction:
    """An action to try: ``kind`` on VM ``vm`` (host actions hit its host) ``at_s`` from now."""

    kind: TwinAction | str
    vm: int
    dst: int | None = None
    at_s: float = 0.0


@dataclass(frozen=True, slots=True)
class CostModel:
    """Price of actions (arbitrary units) and of unavailability (per VM-hour down)."""

    per_action: dict[str, float] = field(
        default_factory=lambda: {
            "restart": 1.0,
            "migrate": 3.0,
            "cleanup": 2.0,
            "reroute": 2.0,
            "replace": 50.0,
        }
    )
    per_vm_hour_down: float = 10.0


@dataclass(frozen=True, slots=True)
class WhatIfResult:
    """Predicted consequences over the horizon."""

    horizon_s: float
    availability: float  # mean fraction of VMs passing their probe
    slo_ok: bool  # availability >= target and p95 latency <= target
    p95_latency_s: float  # across up hosts and samples
    mean_util: float
    peak_util: float
    peak_temp_c: float
    vms_down_at_end: int
    cost: float
    risk: float  # 0 (nothing can go wrong) … 1 (it will)
    risk_parts: dict[str, float]


def what_if(
    sim: Simulator,
    actions: Sequence[PlannedAction],
    horizon_s: float,
    *,
    faults: Sequence[tuple[int, TwinFault | str]] = (),
    dt_s: float | None = None,
    samples: int = 30,
    slo_availability: float = 0.999,
    slo_latency_s: float = 0.5,
    costs: CostModel | None = None,
) -> WhatIfResult:
    """Predict the fleet over ``horizon_s`` after ``actions`` (and hypothetical ``faults``)."""
    if not (horizon_s > 0 and math.isfinite(horizon_s)):
        raise InputError(f"must be finite and > 0, got {horizon_s}", where="horizon_s")
    if samples < 1:
        raise InputError(f"must be >= 1, got {samples}", where="samples")
    twin = sim.fork(dt_s=dt_s)
    for vm, kind in faults:
        twin.inject_fault(vm, parse_fault(kind))
    disrupted = _schedule(twin, actions)
    start = twin.now
    avail, lat, util, peak_temp = [], [], [], float(twin.state.temp_c.max())
    for i in range(1, samples + 1):
        twin.advance_to(start + horizon_s * i / samples)
        s = twin.state
        avail.append(float(s.vm_ok(twin.params).mean()) if sim.topo.n_vms else 1.0)
        up = s.host_up
        lat.append(s.host_latency_s()[up] if up.any() else np.array([np.inf]))
        util.append(s.util[up] if up.any() else np.zeros(1))
        peak_temp = max(peak_temp, float(s.temp_c.max()))
    availability = float(np.mean(avail))
    p95 = float(np.percentile(np.concatenate(lat), 95))
    all_util = np.concatenate(util)
    costs = costs or CostModel()
    n = max(sim.topo.n_vms, 1)
    down_hours = (1.0 - availability) * n * horizon_s / 3600.0
    action_cost = sum(costs.per_action.get(parse_action(a.kind).value, 0.0) for a in actions)
    parts = {
        "disruption": disrupted / n,
        "overload": float((all_util > 0.9).mean()),
        "thermal": float(twin.state.throttled.mean()),
        "unavailability": 1.0 - min(avail),
    }
    risk = 1.0 - float(np.prod([1.0 - min(max(v, 0.0), 1.0) for v in parts.values()]))
    return WhatIfResult(
        horizon_s=horizon_s, availability=availability,
        slo_ok=availability >= slo_availability and p95 <= slo_latency_s, p95_latency_s=p95,
        mean_util=float(all_util.mean()), peak_util=float(all_util.max()), peak_temp_c=peak_temp,
        vms_down_at_end=int((~twin.state.vm_ok(twin.params)).sum()),
        cost=action_cost + costs.per_vm_hour_down * down_hours, risk=risk, risk_parts=parts,
    )  # fmt: skip


def _schedule(twin: Simulator, actions: Sequence[PlannedAction]) -> int:
    """Start or schedule each action; returns how many running VMs the actions take down."""
    disrupted = 0
    for a in actions:
        kind = parse_action(a.kind)
        if a.at_s < 0:
            raise InputError(f"must be >= 0, got {a.at_s}", where="PlannedAction.at_s")
        if kind is TwinAction.RESTART and twin.state.status[a.vm] in (VmStatus.UP, VmStatus.HUNG):
            disrupted += 1
        if a.at_s == 0:
            twin.apply_action(a.vm, kind, dst=a.dst)
        else:
            twin.schedule(twin.now + a.at_s, functools.partial(_start, twin, a.vm, kind, a.dst))
    return disrupted


def _start(twin: Simulator, vm: int, kind: TwinAction, dst: int | None) -> None:
    twin.apply_action(vm, kind, dst=dst)


def rank_actions(
    sim: Simulator,
    candidates: Sequence[Sequence[PlannedAction]],
    horizon_s: float,
    *,
    dt_s: float | None = None,
    slo_availability: float = 0.999,
) -> list[tuple[int, WhatIfResult]]:
    """Score candidate plans; best first (meets SLO, then lowest cost, then lowest risk)."""
    scored = [
        (i, what_if(sim, plan, horizon_s, dt_s=dt_s, slo_availability=slo_availability))
        for i, plan in enumerate(candidates)
    ]
    return sorted(scored, key=lambda item: (not item[1].slo_ok, item[1].cost, item[1].risk))


def time_to_healthy(
    sim: Simulator, vm: int, actions: Sequence[PlannedAction], horizon_s: float, *, step_s: float = 1.0
) -> float | None:
    """Seconds from now until VM ``vm`` passes its probe after ``actions``, or None within the horizon.

    Runs on a fork of the present (as :func:`what_if`), checking the VM every ``step_s``,
    so the answer is known to that granularity.
    """
    if not (horizon_s > 0 and math.isfinite(horizon_s)):
        raise InputError(f"must be finite and > 0, got {horizon_s}", where="horizon_s")
    if not (step_s > 0 and math.isfinite(step_s)):
        raise InputError(f"must be finite and > 0, got {step_s}", where="step_s")
    if not 0 <= vm < sim.topo.n_vms:
        raise InputError(f"{vm} is not a VM (0..{sim.topo.n_vms - 1})", where="vm")
    twin = sim.fork()
    _schedule(twin, actions)
    start, elapsed = twin.now, 0.0
    while elapsed < horizon_s - 1e-9:
        elapsed = min(horizon_s, elapsed + step_s)
        twin.advance_to(start + elapsed)
        if twin.vm_health(vm):
            return elapsed
    return None
