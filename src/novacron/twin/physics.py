"""The array models: compute (M/M/c), storage (M/M/1 + fill), network, thermal, memory.

One :meth:`Physics.step` advances every host and link by ``dt`` seconds with a fixed
number of numpy operations, whatever the fleet size. Models, in one line each:

- compute: demand = Σ_group agg·mult + extra; capacity = cores × throttle; queueing delay by
  Sakasegawa's M/M/c approximation ``Wq = S·ρ^(√(2(c+1))−1) / (c(1−ρ))``; demand above
  capacity piles up as backlog (saturation) that adds ``backlog / capacity`` seconds.
- storage: IOPS utilisation → M/M/1 latency ``base / (1−u)``; runaway writers fill the disk.
- network: each host spreads its egress evenly over its up links (ECMP-like); link latency
  is M/M/1 in link utilisation and overload drops packets, which costs retries.
- thermal: power is linear in utilisation; temperature relaxes exponentially towards
  ``ambient + power / dissipation`` (exact for a step of constant power, so any ``dt`` is
  stable); above ``throttle_c`` capacity drops, above ``critical_c`` the host powers off.
- memory: leaking VMs grow until their limit, then are killed (OOM).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from novacron.twin.params import PhysicsParams
from novacron.twin.state import CPU, IOPS, NET, FleetState, VmStatus
from novacron.twin.topology import FloatArray, IntArray, Topology

__all__ = ["Physics", "StepEvents"]

_RHO_CAP = 0.99  # queueing formulas diverge at 1; saturation is handled by the backlog


@dataclass(frozen=True, slots=True)
class StepEvents:
    """Discrete consequences of a step the simulator must record."""

    overheated_hosts: IntArray
    oom_vms: IntArray


_NONE = np.zeros(0, dtype=np.int64)


class Physics:
    """Vectorised models for one topology; constants are precomputed once."""

    def __init__(self, topo: Topology, params: PhysicsParams) -> None:
        self.topo = topo
        self.params = params
        self._exponent = np.sqrt(2.0 * (topo.host_cores + 1.0)) - 1.0
        self._power_span = params.max_power_w - params.idle_power_w

    def step(self, state: FleetState, mult: FloatArray, dt: float) -> StepEvents:
        """Advance every model by ``dt`` seconds under group multipliers ``mult``."""
        topo = self.topo
        demand = (state.agg.reshape(3 * topo.n_hosts, topo.n_groups) @ mult).reshape(3, -1)
        factor = self._compute(state, demand[CPU] + state.extra_cpu, dt)
        self._storage(state, demand[IOPS], dt)
        self._network(state, demand[NET])
        overheated = self._thermal(state, factor, dt)
        oom = self._memory(state, dt)
        state.t += dt
        if overheated.size == 0 and oom.size == 0:
            return _EMPTY_EVENTS
        return StepEvents(overheated_hosts=overheated, oom_vms=oom)

    def _compute(self, state: FleetState, cpu: FloatArray, dt: float) -> FloatArray:
        p = self.params
        state.throttled = state.temp_c > p.throttle_c
        factor = np.where(state.throttled, p.throttle_factor, 1.0) * state.host_up
        cap = self.topo.host_cores * factor
        safe_cap = np.maximum(cap, 1e-9)
        rho = cpu / safe_cap
        backlog = np.clip(state.backlog + (cpu - cap) * dt, 0.0, p.max_backlog_s * cap)
        state.backlog = backlog
        r = np.clip(rho, 0.0, _RHO_CAP)  # aggregates can drift a hair below 0 in float
        wq = p.service_time_s * r**self._exponent / (safe_cap * (1.0 - r))
        state.cpu_latency_s = p.service_time_s + wq + backlog / safe_cap
        state.util = np.minimum(rho, 1.0) * state.host_up
        if state.vm_priority.any():
            self._prioritised(state, cpu - state.extra_cpu, safe_cap)
        return factor

    def _prioritised(self, state: FleetState, base: FloatArray, safe_cap: FloatArray) -> None:
        """A prioritised VM is served before its host's other tenants' extra demand (a CPU weight)."""
        p = self.params
        mine = state.running() & state.vm_priority
        own = np.bincount(state.vm_host[mine], state.vm_extra_cpu[mine], minlength=self.topo.n_hosts)
        rho = (base + own) / safe_cap
        r = np.clip(rho, 0.0, _RHO_CAP)
        wq = p.service_time_s * r**self._exponent / (safe_cap * (1.0 - r))
        # Its own overload still queues (the host's backlog, while it alone exceeds capacity).
        state.prio_cpu_latency_s = p.service_time_s + wq + np.where(rho >= 1.0, state.backlog / safe_cap, 0.0)

    def _storage(self, state: FleetState, iops: FloatArray, dt: float) -> None:
        u = np.minimum(iops / self.topo.host_iops, _RHO_CAP)
        state.io_latency_s = self.params.io_base_latency_s / (1.0 - u)
        if state.disk_fill_gb_s.any():
            grown = state.disk_used_gb + state.disk_fill_gb_s * dt
            state.disk_used_gb = np.minimum(grown, self.topo.host_disk_gb)

    def _network(self, state: FleetState, egress: FloatArray) -> None:
        topo, p = self.topo, self.params
        if topo.n_links == 0:
            state.net_latency_s = np.zeros(topo.n_hosts)
            return
        share = egress * state.host_up * state.inv_degree
        load = (share[topo.link_src] + share[topo.link_dst]) * state.link_up
        u = load / topo.link_gbps
        state.link_util = u
        drop = np.maximum(0.0, 1.0 - 1.0 / np.maximum(u, 1.0))
        lat = (p.net_base_latency_s / (1.0 - np.minimum(u, _RHO_CAP)) + drop * p.probe_timeout_s) * (state.link_up)
        h = topo.n_hosts
        total = np.bincount(topo.link_src, lat, minlength=h) + np.bincount(topo.link_dst, lat, minlength=h)
        state.net_latency_s = total * state.inv_degree

    def _thermal(self, state: FleetState, factor: FloatArray, dt: float) -> IntArray:
        p = self.params
        power = (p.idle_power_w + self._power_span * state.util * factor) * state.host_up
        dissipation = p.dissipation_w_per_c * state.cooling
        t_eq = p.ambient_c + power / dissipation
        # With heat capacity fixed, a weaker dissipation also slows the approach to t_eq.
        decay = np.exp(-dt * state.cooling / p.thermal_tau_s)
        state.temp_c = t_eq + (state.temp_c - t_eq) * decay
        hot = state.host_up & (state.temp_c > p.critical_c)
        return np.flatnonzero(hot) if hot.any() else _NONE

    def _memory(self, state: FleetState, dt: float) -> IntArray:
        idx = state.leaking
        if idx.size == 0:
            return _NONE
        live = (state.status[idx] == VmStatus.UP) | (state.status[idx] == VmStatus.HUNG)
        idx = idx[live & state.host_up[state.vm_host[idx]]]
        grow = state.leak_gb_s[idx] * dt
        state.mem_extra_gb[idx] += grow
        np.add.at(state.host_mem_gb, state.vm_host[idx], grow)
        used = self.topo.vm_mem_gb[idx] + state.mem_extra_gb[idx]
        oom: IntArray = idx[used > self.topo.vm_mem_limit_gb[idx]]
        return oom


_EMPTY_EVENTS = StepEvents(overheated_hosts=_NONE, oom_vms=_NONE)
