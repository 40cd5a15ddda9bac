"""Mutable fleet state as numpy arrays, with per-host aggregates kept up to date by events.

Why aggregates: the workload multiplies each VM's base demand by its group's multiplier,
so a host's demand is ``agg[h, g] @ mult[g]``. Keeping ``agg`` (sum of running VMs' base
demand per host and group) current on the rare events that change it (crash, restart,
migration) makes a step cost O(hosts × groups) instead of O(VMs) — which is what lets
10,000 VMs run far faster than real time on one core.
"""

from __future__ import annotations

import copy
import enum
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from novacron.twin.params import PhysicsParams
from novacron.twin.topology import FloatArray, IntArray, Topology

__all__ = ["BoolArray", "FleetState", "VmStatus"]

BoolArray = npt.NDArray[np.bool_]

# Rows of the aggregate tensor.
CPU, IOPS, NET = 0, 1, 2


class VmStatus(enum.IntEnum):
    """Lifecycle of a VM in the twin."""

    UP = 0
    CRASHED = 1
    HUNG = 2  # still consumes resources but does not answer
    ACTING = 3  # an action (restart, migration) holds it down


@dataclass(slots=True, eq=False)
class FleetState:
    """Everything that changes while the twin runs. ``copy()`` is a fast deep copy."""

    topo: Topology
    t: float
    # hosts
    host_up: BoolArray
    temp_c: FloatArray
    cooling: FloatArray  # fraction of healthy dissipation
    backlog: FloatArray  # core-seconds of queued work
    disk_used_gb: FloatArray
    disk_fill_gb_s: FloatArray
    host_mem_gb: FloatArray  # memory of running VMs (base + leaked)
    extra_cpu: FloatArray  # per-host extra demand (noisy neighbours, bursts)
    agg: FloatArray  # (3, hosts, groups) running base demand
    # host outputs of the last step
    util: FloatArray
    throttled: BoolArray
    cpu_latency_s: FloatArray
    io_latency_s: FloatArray
    net_latency_s: FloatArray
    # VMs
    vm_host: IntArray
    status: npt.NDArray[np.int8]
    mem_extra_gb: FloatArray
    leak_gb_s: FloatArray
    leaking: IntArray  # indices with leak_gb_s > 0, kept so a step need not scan every VM
    vm_extra_cpu: FloatArray
    vm_priority: BoolArray  # CPU share raised above the host's other tenants (reallocate)
    prio_cpu_latency_s: FloatArray  # per host: compute latency a prioritised VM sees
    # links
    link_up: BoolArray
    link_util: FloatArray
    host_degree: FloatArray  # up links per host (cached; changes only on partition events)
    inv_degree: FloatArray  # 1 / host_degree, 0 where a host has no up link

    @classmethod
    def initial(cls, topo: Topology, params: PhysicsParams, t0: float = 0.0) -> FleetState:
        """All hosts up and cool, every VM running on its placed host."""
        h, n, lk = topo.n_hosts, topo.n_vms, topo.n_links
        zeros_h = np.zeros(h)
        state = cls(
            topo=topo, t=t0, host_up=np.ones(h, dtype=bool), temp_c=np.full(h, params.ambient_c),
            cooling=np.ones(h), backlog=zeros_h.copy(), disk_used_gb=topo.host_disk_gb * 0.3,
            disk_fill_gb_s=zeros_h.copy(), host_mem_gb=zeros_h.copy(), extra_cpu=zeros_h.copy(),
            agg=np.zeros((3, h, topo.n_groups)), util=zeros_h.copy(),
            throttled=np.zeros(h, dtype=bool), cpu_latency_s=zeros_h.copy(),
            io_latency_s=zeros_h.copy(), net_latency_s=zeros_h.copy(),
            vm_host=topo.vm_host.copy(), status=np.zeros(n, dtype=np.int8),
            mem_extra_gb=np.zeros(n), leak_gb_s=np.zeros(n), leaking=np.zeros(0, dtype=np.int64),
            vm_extra_cpu=np.zeros(n), vm_priority=np.zeros(n, dtype=bool), prio_cpu_latency_s=zeros_h.copy(),
            link_up=np.ones(lk, dtype=bool), link_util=np.zeros(lk), host_degree=zeros_h.copy(),
            inv_degree=zeros_h.copy(),
        )  # fmt: skip
        state.rebuild_aggregates()
        state.refresh_links()
        return state

    def copy(self) -> FleetState:
        """A deep copy of every array (the topology is immutable and shared)."""
        new = copy.copy(self)
        for name in self.__slots__:
            value = getattr(self, name)
            if isinstance(value, np.ndarray):
                setattr(new, name, value.copy())
        return new

    # -- aggregates -----------------------------------------------------------------------

    def running(self) -> BoolArray:
        """VMs whose process exists (up or hung), regardless of their host's state."""
        running: BoolArray = (self.status == VmStatus.UP) | (self.status == VmStatus.HUNG)
        return running

    def rebuild_aggregates(self) -> None:
        """Recompute per-host aggregates from the VM arrays (after bulk changes)."""
        topo, h, g = self.topo, self.topo.n_hosts, self.topo.n_groups
        run = self.running().astype(np.float64)
        flat = self.vm_host * g + topo.vm_group
        for row, base in ((CPU, topo.vm_cpu), (IOPS, topo.vm_iops), (NET, topo.vm_net_gbps)):
            self.agg[row] = np.bincount(flat, base * run, minlength=h * g).reshape(h, g)
        mem = (topo.vm_mem_gb + self.mem_extra_gb) * run
        self.host_mem_gb = np.bincount(self.vm_host, mem, minlength=h).astype(np.float64)
        self.extra_cpu = np.bincount(self.vm_host, self.vm_extra_cpu * run, minlength=h).astype(np.float64)

    def _contribute(self, vm: int, sign: float) -> None:
        topo, h, g = self.topo, int(self.vm_host[vm]), int(self.topo.vm_group[vm])
        self.agg[CPU, h, g] += sign * topo.vm_cpu[vm]
        self.agg[IOPS, h, g] += sign * topo.vm_iops[vm]
        self.agg[NET, h, g] += sign * topo.vm_net_gbps[vm]
        self.host_mem_gb[h] += sign * (topo.vm_mem_gb[vm] + self.mem_extra_gb[vm])
        self.extra_cpu[h] += sign * self.vm_extra_cpu[vm]

    def set_status(self, vm: int, status: VmStatus) -> None:
        """Change a VM's status, moving its demand in or out of its host's aggregates."""
        was = self.status[vm] in (VmStatus.UP, VmStatus.HUNG)
        now = status in (VmStatus.UP, VmStatus.HUNG)
        if was and not now:
            self._contribute(vm, -1.0)
        self.status[vm] = status
        if now and not was:
            self._contribute(vm, 1.0)

    def move_vm(self, vm: int, host: int) -> None:
        """Place a VM on another host, carrying its aggregates along if it runs."""
        run = self.status[vm] in (VmStatus.UP, VmStatus.HUNG)
        if run:
            self._contribute(vm, -1.0)
        self.vm_host[vm] = host
        if run:
            self._contribute(vm, 1.0)

    def set_vm_extra_cpu(self, vm: int, cores: float) -> None:
        """Set a VM's extra CPU demand (noisy neighbour, burst)."""
        if self.status[vm] in (VmStatus.UP, VmStatus.HUNG):
            self.extra_cpu[self.vm_host[vm]] += cores - self.vm_extra_cpu[vm]
        self.vm_extra_cpu[vm] = cores

    def set_leak(self, vm: int, gb_per_s: float) -> None:
        """Start (rate > 0) or stop (0) a VM's memory leak."""
        self.leak_gb_s[vm] = gb_per_s
        self.leaking = np.flatnonzero(self.leak_gb_s)

    def reset_vm_memory(self, vm: int) -> None:
        """Forget leaked memory (a restart starts a fresh process)."""
        if self.status[vm] in (VmStatus.UP, VmStatus.HUNG):
            self.host_mem_gb[self.vm_host[vm]] -= self.mem_extra_gb[vm]
        self.mem_extra_gb[vm] = 0.0

    def cpu_latency_of(self, vm: int) -> float:
        """The compute latency VM ``vm`` sees: its host's, or the prioritised share's."""
        host = int(self.vm_host[vm])
        return float(self.prio_cpu_latency_s[host] if self.vm_priority[vm] else self.cpu_latency_s[host])

    # -- network ------------------------------------------------------------------------

    def refresh_links(self) -> None:
        """Recompute each host's count of up links (after a partition or repair)."""
        h, up = self.topo.n_hosts, self.link_up.astype(np.float64)
        degree = np.bincount(self.topo.link_src, up, minlength=h) + np.bincount(self.topo.link_dst, up, minlength=h)
        self.host_degree = degree.astype(np.float64)
        self.inv_degree = np.divide(1.0, degree, out=np.zeros(h), where=degree > 0)

    def reachable(self) -> BoolArray:
        """Hosts with at least one up link (a one-host fleet is trivially reachable)."""
        if self.topo.n_links == 0:
            return np.ones(self.topo.n_hosts, dtype=bool)
        return self.host_degree > 0

    def host_latency_s(self) -> FloatArray:
        """End-to-end request latency per host: compute + storage + network."""
        return self.cpu_latency_s + self.io_latency_s + self.net_latency_s

    def host_ok(self, params: PhysicsParams) -> BoolArray:
        """Hosts on which a running VM would pass its health probe."""
        disk_ok = self.disk_used_gb < self.topo.host_disk_gb
        fast = self.host_latency_s() <= params.probe_timeout_s
        return self.host_up & self.reachable() & disk_ok & fast

    def vm_ok(self, params: PhysicsParams) -> BoolArray:
        """VMs that would pass their health probe now."""
        ok: BoolArray = (self.status == VmStatus.UP) & self.host_ok(params)[self.vm_host]
        if self.vm_priority.any():
            prio = np.flatnonzero(self.vm_priority)
            hosts = self.vm_host[prio]
            others = self.io_latency_s[hosts] + self.net_latency_s[hosts]
            fast = self.prio_cpu_latency_s[hosts] + others <= params.probe_timeout_s
            served = self.host_up[hosts] & self.reachable()[hosts] & (self.disk_used_gb < self.topo.host_disk_gb)[hosts]
            ok[prio] = (self.status[prio] == VmStatus.UP) & served & fast
        return ok
