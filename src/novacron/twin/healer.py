"""The twin's built-in healing policy, for standalone runs without the real controller.

It sees only what a monitoring system would: the probe health vector, memory, disk and
temperature arrays. It declares a fault after ``failure_threshold`` failed probes in a row,
waits ``detection_delay_s`` (alerting/diagnosis pipeline), then diagnoses from host state:

host down → evacuate by the shared host-failure plan (``placement.py``: by priority,
onto hosts with room) and replace; host unreachable → reroute; disk full →
cleanup; VM crashed or hung → restart (migrate after ``max_restarts``); host hot →
live-evacuate and replace; host saturated → restart the runaway VM or move the biggest.
Proactively it restarts VMs near their memory limit, cleans disks above ``disk_high`` and
evacuates hosts above the throttle temperature, before users notice.
"""

from __future__ import annotations

import numpy as np

from novacron.twin.faults import TwinAction, pick_target_host
from novacron.twin.sim import Simulator
from novacron.twin.state import BoolArray, VmStatus

__all__ = ["BuiltinHealer", "with_healer"]

_RUNAWAY_RATIO = 2.0  # a VM using more than this multiple of its base CPU is a runaway


class BuiltinHealer:
    """Probe-driven detection and rule-based remediation over the simulator's arrays."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.params = sim.healer_params
        n = sim.topo.n_vms
        self.fail_count = np.zeros(n, dtype=np.int32)
        self.busy = np.zeros(n, dtype=bool)  # detected and being handled
        self.restarts = np.zeros(n, dtype=np.int32)
        self.no_capacity = 0  # overloads left alone because no host had room
        sim.on_action_done.append(self._action_done)
        sim.on_probe.append(self.on_probe)

    def on_probe(self, ok: BoolArray) -> None:
        """Count failures, declare faults, and look for trouble before it bites."""
        self.fail_count = np.where(ok, 0, self.fail_count + 1)
        due = (self.fail_count >= self.params.failure_threshold) & ~self.busy
        if due.any():
            for vm in np.flatnonzero(due):
                self._declare(int(vm))
        self._proactive()

    def _declare(self, vm: int) -> None:
        self.busy[vm] = True
        self.sim.note_detected(vm)
        delay = self.params.detection_delay_s
        if delay > 0:
            self.sim.schedule(self.sim.now + delay, lambda: self._plan(vm))
        else:
            self._plan(vm)

    def _plan(self, vm: int) -> None:
        sim, s = self.sim, self.sim.state
        host = int(s.vm_host[vm])
        if not s.host_up[host]:
            self._fail_over(host, vm)
        elif sim.topo.n_links and s.host_degree[host] == 0:
            sim.apply_action(vm, TwinAction.REROUTE)
        elif s.disk_used_gb[host] >= sim.topo.host_disk_gb[host] * self.params.disk_high:
            sim.apply_action(vm, TwinAction.CLEANUP)
        elif s.status[vm] in (VmStatus.CRASHED, VmStatus.HUNG):
            over = self.restarts[vm] >= self.params.max_restarts
            self.restarts[vm] += 1
            sim.apply_action(vm, TwinAction.MIGRATE if over else TwinAction.RESTART)
        elif s.throttled[host]:
            self._evacuate(host)
        elif s.status[vm] == VmStatus.UP and s.host_latency_s()[host] > sim.params.probe_timeout_s:
            self._relieve(host, fallback=vm)
        elif s.status[vm] == VmStatus.UP:
            # Healthy again by the time we looked (e.g. after a transient burst).
            self.busy[vm] = False
            self.fail_count[vm] = 0
        # VMs in ACTING are already being handled; they are released when it completes.

    def _fail_over(self, host: int, vm: int) -> None:
        """A host is down: its VMs go where the shared host-failure plan puts them, then it is repaired."""
        plan = self.sim.evacuate(host)
        for moved, _dst in plan:
            self.busy[moved] = True  # one without a place waits for the host's repair
        self.no_capacity += sum(dst is None for _, dst in plan)
        self.sim.apply_action(vm, TwinAction.REPLACE)

    def _evacuate(self, host: int) -> None:
        sim, s = self.sim, self.sim.state
        on_host = np.flatnonzero((s.vm_host == host) & (s.status != VmStatus.ACTING))
        for vm in on_host:
            self.busy[vm] = True
            sim.apply_action(int(vm), TwinAction.MIGRATE)
        if on_host.size:
            sim.apply_action(int(on_host[0]), TwinAction.REPLACE)

    def _relieve(self, host: int, fallback: int) -> None:
        sim, s = self.sim, self.sim.state
        on_host = np.flatnonzero((s.vm_host == host) & (s.status == VmStatus.UP))
        if on_host.size == 0:
            sim.apply_action(fallback, TwinAction.RESTART)
            return
        topo = sim.topo
        mult = sim.workload.multipliers(sim.now)[topo.vm_group[on_host]]
        base = topo.vm_cpu[on_host] * mult
        usage = base + s.vm_extra_cpu[on_host]
        ratio = usage / np.maximum(base, 1e-9)
        worst = int(on_host[int(np.argmax(ratio))])
        self.busy[worst] = True
        if ratio.max() > _RUNAWAY_RATIO:
            sim.apply_action(worst, TwinAction.RESTART)
        else:
            self.busy[worst] = False
            big = int(np.argmax(usage))
            dst = pick_target_host(s, sim.params, host, sim.reserved_cpu, float(usage[big]))
            if dst >= 0:
                self.busy[on_host[big]] = True
                sim.apply_action(int(on_host[big]), TwinAction.MIGRATE, dst=dst)
            else:
                self.no_capacity += 1  # nowhere to put it: wait for the load or capacity to change
        if fallback != worst:
            self.busy[fallback] = False
            self.fail_count[fallback] = 0

    def _proactive(self) -> None:
        sim, s, p = self.sim, self.sim.state, self.params
        topo = sim.topo
        if s.leaking.size:
            idx = np.flatnonzero(s.mem_extra_gb > 0)
            near = (topo.vm_mem_gb[idx] + s.mem_extra_gb[idx]) > p.memory_high * topo.vm_mem_limit_gb[idx]
            for vm in idx[near & ~self.busy[idx] & (s.status[idx] == VmStatus.UP)]:
                self.busy[vm] = True
                sim.note_detected(int(vm))
                sim.apply_action(int(vm), TwinAction.RESTART)
        full = (s.disk_used_gb > p.disk_high * topo.host_disk_gb) & s.host_up
        hot = s.throttled & s.host_up
        for host in np.flatnonzero(full | hot):
            h = int(host)
            if h in sim.host_actions:
                continue
            vms = np.flatnonzero(s.vm_host == h)
            if vms.size == 0:
                continue
            sim.note_detected(int(vms[0]))
            if hot[h]:
                self._evacuate(h)
            else:
                sim.apply_action(int(vms[0]), TwinAction.CLEANUP)

    def _action_done(self, action: TwinAction, vm: int, host: int) -> None:
        s = self.sim.state
        if action in (TwinAction.RESTART, TwinAction.MIGRATE):
            released = np.array([vm])
        else:
            released = np.flatnonzero(s.vm_host == host)
            released = released[s.status[released] != VmStatus.ACTING]
        self.busy[released] = False
        self.fail_count[released] = 0
        if action is TwinAction.MIGRATE:
            self.restarts[vm] = 0


def with_healer(sim: Simulator) -> Simulator:
    """Attach the built-in healer to ``sim`` when its ``HealerParams.enabled`` says so; returns ``sim``."""
    if sim.healer_params.enabled:
        BuiltinHealer(sim)
    return sim
