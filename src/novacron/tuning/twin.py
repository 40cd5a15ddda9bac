"""Evaluating a healing configuration on the twin, with common random numbers.

A :class:`TwinScenario` fixes the fleet, the fault and burst rates and the seeds. Seed
``s`` draws the same faults and demand bursts for every candidate (they are scheduled
before anything the candidate controls runs), so two candidates are compared on the same
troubles and their difference is the configuration's, not luck's; a candidate run twice
scores the same. Each run is short and dense in faults (a window of arrivals and a tail to
finish repairs) so that hundreds of candidates fit in minutes.

What a run measures (:data:`METRICS`): MTTR p95 and mean in seconds (a fault still open
at the end counts with its downtime so far, so never repairing is never cheap), false
actions per day (actions on a VM or host with no fault open when the action began: a
demand burst mistaken for a fault), availability (mean share of VMs passing their probe)
and cost per hour of the hosts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np

from novacron.errors import InputError
from novacron.tuning.objective import Direction
from novacron.twin import HealerParams, PhysicsParams, Simulator, build_fleet, burst_arrivals, with_healer
from novacron.twin.faults import TwinAction, TwinFault, parse_fault
from novacron.twin.records import FaultRecord

__all__ = [
    "KNOBS",
    "METRICS",
    "RunResult",
    "TwinScenario",
    "combine",
    "false_action_counter",
    "run_healer",
]

# Metric name → whether lower or higher is better.
METRICS: dict[str, Direction] = {
    "mttr_p95_s": "min",
    "mttr_mean_s": "min",
    "false_actions_per_day": "min",
    "actions_per_day": "min",
    "availability": "max",
    "cost_per_hour": "min",
}

# The healing knobs a twin run honours, and which parameter record holds each.
KNOBS: dict[str, str] = {
    **{f.name: "healer" for f in fields(HealerParams) if f.name not in ("enabled", *(f"{a}_s" for a in TwinAction))},
    "probe_timeout_s": "physics",
}

_DAY_S = 86_400.0
_EPS = 1e-6


@dataclass(frozen=True, slots=True)
class TwinScenario:
    """The fleet and the troubles every candidate faces."""

    hosts: int = 4
    vms: int = 16
    fault_rate_per_hour: float = 120.0
    window_s: float = 900.0  # faults and bursts arrive in [0, window)
    tail_s: float = 300.0  # then the run goes on this long so repairs can finish
    bursts_per_hour: float = 60.0
    burst_cores: float = 24.0  # a burst big enough to slow its host: a probe fails without a fault
    dt_s: float = 5.0  # the twin's step; probes cannot be more frequent than this
    core_price_per_hour: float = 0.04
    seeds: tuple[int, ...] = (0, 1, 2)
    kinds: tuple[str, ...] = ()  # fault kinds drawn (equally likely); empty: the twin's default mix

    def __post_init__(self) -> None:
        if self.hosts < 1 or self.vms < 1:
            raise InputError("a scenario needs at least one host and one VM", where="scenario")
        for name in ("window_s", "dt_s"):
            if not getattr(self, name) > 0:
                raise InputError(f"must be > 0, got {getattr(self, name)}", where=f"scenario.{name}")
        for name in ("fault_rate_per_hour", "tail_s", "bursts_per_hour", "burst_cores", "core_price_per_hour"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise InputError(f"must be finite and >= 0, got {value}", where=f"scenario.{name}")
        if not self.seeds:
            raise InputError("name at least one seed", where="scenario.seeds")
        for i, kind in enumerate(self.kinds):
            try:
                parse_fault(kind)
            except InputError:
                raise InputError(f"unknown fault kind {kind!r}", where=f"scenario.kinds[{i}]") from None

    def fault_mix(self) -> dict[TwinFault, float] | None:
        """The fault kinds to draw, equally likely (None: the twin's default mix)."""
        return {parse_fault(k): 1.0 for k in self.kinds} or None

    @property
    def horizon_s(self) -> float:
        """Simulated seconds of one run."""
        return self.window_s + self.tail_s

    def with_seeds(self, seeds: Sequence[int]) -> TwinScenario:
        """The same scenario on other seeds (fresh-seed validation)."""
        return replace(self, seeds=tuple(seeds))


@dataclass(frozen=True, slots=True)
class RunResult:
    """What one seeded run measured (combined across seeds by :func:`combine`)."""

    seed: int
    downtimes_s: tuple[float, ...]
    false_actions: int
    actions: int
    availability: float
    sim_seconds: float
    cost_per_hour: float


def split_knobs(knobs: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split knob values into HealerParams and PhysicsParams keyword arguments (unknown names refused)."""
    healer: dict[str, Any] = {}
    physics: dict[str, Any] = {}
    for name, value in knobs.items():
        home = KNOBS.get(name)
        if home is None:
            raise InputError(f"the twin has no knob {name!r} (known: {', '.join(sorted(KNOBS))})", where=name)
        (healer if home == "healer" else physics)[name] = value
    return healer, physics


def false_action_counter(sim: Simulator) -> list[int]:
    """Count, in the returned one-element list, actions that began with no fault open on their VM or host."""
    count = [0]

    def done(action: TwinAction, vm: int, host: int) -> None:
        began = sim.now - sim.action_duration(action)
        if not any(_covers(rec, vm, host, began) for rec in sim.records):
            count[0] += 1

    sim.on_action_done.append(done)
    return count


def _covers(rec: FaultRecord, vm: int, host: int, t: float) -> bool:
    if rec.vm != vm and rec.host != host:
        return False
    return rec.t_inject <= t + _EPS and (rec.t_recover is None or rec.t_recover >= t - _EPS)


def downtimes(sim: Simulator) -> tuple[float, ...]:
    """Per fault that hurt: its repair time, or its downtime so far when still open (censored)."""
    out = []
    for rec in sim.records:
        if rec.t_impact is None:
            continue
        end = rec.t_recover if rec.t_recover is not None else sim.now
        out.append(max(0.0, end - rec.t_impact))
    return tuple(out)


def run_healer(knobs: Mapping[str, Any], scenario: TwinScenario, seed: int) -> RunResult:
    """One seeded run of the built-in healer with ``knobs`` applied."""
    healer_kw, physics_kw = split_knobs(knobs)
    for name in ("failure_threshold", "max_restarts"):
        if name in healer_kw:
            healer_kw[name] = int(healer_kw[name])
    topo = build_fleet(scenario.hosts, scenario.vms, seed=seed)
    sim = Simulator(
        topo,
        physics=PhysicsParams(dt_s=scenario.dt_s, **physics_kw),
        healer=HealerParams(**healer_kw),
        seed=seed,
    )
    # Troubles first, from the seed alone: the same for every candidate (common random numbers).
    sim.schedule_random_faults(scenario.fault_rate_per_hour, scenario.window_s, scenario.fault_mix())
    rng = np.random.default_rng([seed, 1])
    sim.schedule_bursts(
        burst_arrivals(rng, topo.n_vms, scenario.window_s, scenario.bursts_per_hour, scenario.burst_cores)
    )
    false = false_action_counter(sim)
    with_healer(sim)
    sim.advance_to(scenario.horizon_s)
    cost = float(topo.host_cores.sum()) * scenario.core_price_per_hour
    return RunResult(seed, downtimes(sim), false[0], sum(sim.actions.values()), sim.availability(), sim.now, cost)


def combine(results: Sequence[RunResult]) -> dict[str, float]:
    """Pool seeded runs into the metrics of :data:`METRICS` (downtimes pooled, rates over all time)."""
    if not results:
        raise InputError("no runs to combine", where="results")
    pooled = np.array([d for r in results for d in r.downtimes_s], dtype=np.float64)
    days = sum(r.sim_seconds for r in results) / _DAY_S
    return {
        "mttr_p95_s": float(np.percentile(pooled, 95)) if pooled.size else 0.0,
        "mttr_mean_s": float(pooled.mean()) if pooled.size else 0.0,
        "false_actions_per_day": sum(r.false_actions for r in results) / days,
        "actions_per_day": sum(r.actions for r in results) / days,
        "availability": float(np.mean([r.availability for r in results])),
        "cost_per_hour": float(np.mean([r.cost_per_hour for r in results])),
    }
