"""``novacron bench twin``: how much faster than real time the twin runs, and than SimPy.

Three timed runs on the same synthetic fleet, all at 1 s steps:

1. the full twin (physics, Poisson faults, bursts, built-in healer) over ``horizon_s`` —
   gives ``speedup_vs_realtime`` and ``steps_per_s``;
2. the twin's physics alone over ``simpy_horizon_s`` and
3. the same physics written the SimPy way (one process per host and per link, scalar
   Python, the same per-host/per-group aggregates and the same formulas) over the same
   horizon. Their per-simulated-second costs give ``speedup_vs_simpy``; the final host
   temperatures and latencies of 2 and 3 are compared to show the models agree.
"""

from __future__ import annotations

import math
import resource
import time
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import numpy as np

from novacron.extras import require
from novacron.twin import HealerParams, PhysicsParams, Simulator, SyntheticWorkload, build_fleet, with_healer
from novacron.twin.state import CPU, IOPS, NET
from novacron.twin.topology import Topology
from novacron.twin.workload import burst_arrivals

if TYPE_CHECKING:
    import simpy

__all__ = ["run_twin_bench"]


def run_twin_bench(
    hosts: int = 1000,
    vms: int = 10_000,
    *,
    horizon_s: float = 3600.0,
    simpy_horizon_s: float = 60.0,
    fault_rate_per_hour: float = 100.0,
    seed: int = 0,
    repeats: int = 3,
) -> dict[str, Any]:
    """Time the twin and its SimPy twin; return the figures as a JSON-ready dict."""
    topo = build_fleet(hosts, vms, seed=seed)
    full = _time_full(topo, horizon_s, fault_rate_per_hour, seed)
    # Best of three, as timeit does: the machine is shared, and the minimum is the run least
    # disturbed by other processes. The twin's physics runs 10x longer to rise above timer noise.
    twin_cost = min(_time_physics_only(topo, 10 * simpy_horizon_s)[0] for _ in range(repeats))
    simpy_cost, simpy_state = min((_time_simpy(topo, simpy_horizon_s) for _ in range(repeats)), key=_first)
    twin_state = _time_physics_only(topo, simpy_horizon_s)[1]
    diff_temp = float(np.max(np.abs(twin_state["temp_c"] - simpy_state["temp_c"])))
    diff_lat = float(np.max(np.abs(twin_state["latency_s"] - simpy_state["latency_s"])))
    return {
        "hosts": hosts,
        "vms": vms,
        "dt_s": 1.0,
        "horizon_s": horizon_s,
        "speedup_vs_realtime": horizon_s / full["wall_s"],
        "steps_per_s": full["steps"] / full["wall_s"],
        "speedup_vs_simpy": simpy_cost / twin_cost,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "full_run": {k: v for k, v in full.items() if k != "steps"},
        "physics_only_speedup_vs_realtime": 1.0 / twin_cost,
        "simpy_speedup_vs_realtime": 1.0 / simpy_cost,
        "simpy_horizon_s": simpy_horizon_s,
        "timing_repeats": repeats,
        "simpy_max_abs_diff": {"temp_c": diff_temp, "latency_s": diff_lat},
    }


def _first(item: tuple[float, dict[str, Any]]) -> float:
    return item[0]


def _time_full(topo: Topology, horizon_s: float, rate: float, seed: int) -> dict[str, Any]:
    sim = with_healer(Simulator(topo, seed=seed))
    sim.schedule_random_faults(rate, horizon_s)
    sim.schedule_bursts(burst_arrivals(sim.rng, topo.n_vms, horizon_s, per_hour=2 * rate))
    start = time.perf_counter()
    sim.advance_to(horizon_s)
    wall = time.perf_counter() - start
    summary = sim.summary()
    return {
        "wall_s": wall,
        "steps": round(horizon_s / sim.params.dt_s),
        "faults": summary.faults,
        "healed": summary.healed,
        "prevented": summary.prevented,
        "actions": sum(summary.actions_by_kind.values()),
    }


def _time_physics_only(topo: Topology, horizon_s: float) -> tuple[float, dict[str, Any]]:
    """Seconds of wall time per simulated second, and the end state."""
    sim = Simulator(topo, healer=HealerParams(enabled=False))
    start = time.perf_counter()
    sim.advance_to(horizon_s)
    cost = (time.perf_counter() - start) / horizon_s
    return cost, {"temp_c": sim.state.temp_c.copy(), "latency_s": sim.state.host_latency_s()}


class _SimpyFleet:
    """The twin's physics, one SimPy process per host and per link (scalar Python)."""

    def __init__(self, topo: Topology, params: PhysicsParams, workload: SyntheticWorkload) -> None:
        self.topo, self.p, self.workload = topo, params, workload
        h = topo.n_hosts
        sim = Simulator(topo, physics=params, healer=HealerParams(enabled=False), workload=workload)
        # The same per-host, per-group aggregates the twin keeps, as Python lists.
        self.agg = [[sim.state.agg[r, i].tolist() for i in range(h)] for r in (CPU, IOPS, NET)]
        self.mult: list[float] = []
        self.temp = [params.ambient_c] * h
        self.backlog = [0.0] * h
        self.lat_cpu, self.lat_io, self.share = [0.0] * h, [0.0] * h, [0.0] * h
        self.net_sum, self.lat_net = [0.0] * h, [0.0] * h
        self.deg = sim.state.host_degree.tolist()
        self.src, self.dst = topo.link_src.tolist(), topo.link_dst.tolist()

    def driver(self, env: simpy.Environment, dt: float) -> Generator[simpy.Event, None, None]:
        while True:
            self.mult = self.workload.multipliers(env.now).tolist()
            self.net_sum = [0.0] * self.topo.n_hosts
            yield env.timeout(dt)

    def host(self, env: simpy.Environment, h: int, dt: float) -> Generator[simpy.Event, None, None]:
        p, cores, iops_cap = self.p, float(self.topo.host_cores[h]), float(self.topo.host_iops[h])
        expo = math.sqrt(2.0 * (cores + 1.0)) - 1.0
        cpu_row, io_row, net_row = self.agg[CPU][h], self.agg[IOPS][h], self.agg[NET][h]
        while True:
            m = self.mult
            cpu = sum(a * b for a, b in zip(cpu_row, m, strict=True))
            factor = p.throttle_factor if self.temp[h] > p.throttle_c else 1.0
            cap = cores * factor
            backlog = min(max(self.backlog[h] + (cpu - cap) * dt, 0.0), p.max_backlog_s * cap)
            self.backlog[h] = backlog
            rho = cpu / cap
            r = min(max(rho, 0.0), 0.99)
            wq = p.service_time_s * r**expo / (cap * (1.0 - r))
            self.lat_cpu[h] = p.service_time_s + wq + backlog / cap
            util = min(rho, 1.0)
            io = sum(a * b for a, b in zip(io_row, m, strict=True))
            self.lat_io[h] = p.io_base_latency_s / (1.0 - min(io / iops_cap, 0.99))
            egress = sum(a * b for a, b in zip(net_row, m, strict=True))
            self.share[h] = egress / self.deg[h] if self.deg[h] > 0 else 0.0
            power = p.idle_power_w + (p.max_power_w - p.idle_power_w) * util * factor
            t_eq = p.ambient_c + power / p.dissipation_w_per_c
            self.temp[h] = t_eq + (self.temp[h] - t_eq) * math.exp(-dt / p.thermal_tau_s)
            yield env.timeout(dt)

    def link(self, env: simpy.Environment, i: int, dt: float) -> Generator[simpy.Event, None, None]:
        p, a, b, gbps = self.p, self.src[i], self.dst[i], float(self.topo.link_gbps[i])
        while True:
            u = (self.share[a] + self.share[b]) / gbps
            drop = max(0.0, 1.0 - 1.0 / max(u, 1.0))
            lat = p.net_base_latency_s / (1.0 - min(u, 0.99)) + drop * p.probe_timeout_s
            self.net_sum[a] += lat
            self.net_sum[b] += lat
            yield env.timeout(dt)

    def collector(self, env: simpy.Environment, dt: float) -> Generator[simpy.Event, None, None]:
        while True:
            self.lat_net = [s / d if d > 0 else 0.0 for s, d in zip(self.net_sum, self.deg, strict=True)]
            yield env.timeout(dt)


def _time_simpy(topo: Topology, horizon_s: float) -> tuple[float, dict[str, Any]]:
    params, workload, dt = PhysicsParams(), SyntheticWorkload(n_groups=topo.n_groups), 1.0
    fleet = _SimpyFleet(topo, params, workload)
    simpy = require("simpy", feature="the SimPy baseline of `novacron bench twin`")
    env = simpy.Environment()
    # Creation order is the order SimPy fires same-time events: workload, hosts, links, sums.
    env.process(fleet.driver(env, dt))
    for h in range(topo.n_hosts):
        env.process(fleet.host(env, h, dt))
    for i in range(topo.n_links):
        env.process(fleet.link(env, i, dt))
    env.process(fleet.collector(env, dt))
    start = time.perf_counter()
    env.run(until=horizon_s - 0.5)  # the last tick at horizon-1 runs; the one at horizon does not
    cost = (time.perf_counter() - start) / horizon_s
    latency = np.array(fleet.lat_cpu) + np.array(fleet.lat_io) + np.array(fleet.lat_net)
    return cost, {"temp_c": np.array(fleet.temp), "latency_s": latency}
