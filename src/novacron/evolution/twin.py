"""Running a fleet layout on the twin: cost, service availability and repair time.

The built-in healer runs the layout's fleet through the scenario's troubles. Fault and
burst rates scale with the number of hosts (each host is as likely to break whatever the
layout), so a bigger fleet is not spared troubles by being big. A service is available at
a probe when at least one of its replicas passes; availability is the mean over services
and probes. Objectives to minimise, in order: cost per hour, unavailability (1 −
availability) and MTTR p95.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from novacron.evolution.layout import Layout
from novacron.tuning.twin import RunResult, TwinScenario, combine, downtimes, false_action_counter
from novacron.twin import HealerParams, PhysicsParams, Simulator, burst_arrivals, with_healer
from novacron.twin.state import BoolArray

__all__ = ["LAYOUT_OBJECTIVES", "layout_objectives", "run_layout"]

LAYOUT_OBJECTIVES = ("cost_per_hour", "unavailability", "mttr_p95_s")


def run_layout(layout: Layout, scenario: TwinScenario, seed: int, services: int = 6) -> RunResult:
    """One seeded run of ``layout`` carrying ``services`` services under the built-in healer."""
    topo, groups = layout.topology(services)
    sim = Simulator(topo, physics=PhysicsParams(dt_s=scenario.dt_s), healer=HealerParams(), seed=seed)
    scale = layout.hosts / scenario.hosts
    sim.schedule_random_faults(scenario.fault_rate_per_hour * scale, scenario.window_s, scenario.fault_mix())
    rng = np.random.default_rng([seed, 1])
    bursts = burst_arrivals(rng, topo.n_vms, scenario.window_s, scenario.bursts_per_hour * scale, scenario.burst_cores)
    sim.schedule_bursts(bursts)
    up = _service_availability(sim, groups)
    false = false_action_counter(sim)
    with_healer(sim)
    sim.advance_to(scenario.horizon_s)
    availability = up[0] / up[1] if up[1] else 1.0
    cost = layout.hosts * layout.host_cores * scenario.core_price_per_hour
    return RunResult(seed, downtimes(sim), false[0], sum(sim.actions.values()), availability, sim.now, cost)


def _service_availability(sim: Simulator, groups: list[list[int]]) -> list[float]:
    """Accumulate [services up, services probed] at every probe round."""
    acc = [0.0, 0.0]
    index = [np.array(g, dtype=np.int64) for g in groups]

    def probed(ok: BoolArray) -> None:
        acc[0] += sum(bool(ok[g].any()) for g in index)
        acc[1] += len(index)

    sim.on_probe.append(probed)
    return acc


def layout_objectives(results: Sequence[RunResult]) -> dict[str, float]:
    """The layout's metrics pooled over seeds, with ``unavailability`` beside availability."""
    metrics = combine(results)
    metrics["unavailability"] = 1.0 - metrics["availability"]
    return metrics
