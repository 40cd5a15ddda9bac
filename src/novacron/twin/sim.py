"""The simulator: fixed-step array physics plus an event heap for faults and actions.

Time advances in steps of ``PhysicsParams.dt_s``; discrete events (fault arrivals, action
completions, bursts, delayed decisions) sit on a heap and fire at the first step boundary
at or after their time (records keep the exact event time). Probes run every
``HealerParams.probe_interval_s``: they sample availability and tell every ``on_probe``
listener (the built-in healer attaches itself there, see :func:`~novacron.twin.healer.with_healer`;
the simulator knows only events, never who reacts to them).

The small API a controller needs — :meth:`inject_fault`, :meth:`apply_action`,
:meth:`vm_health`, :meth:`step`, :meth:`advance_to` — is what a ``sim://`` actuator drives.
"""

from __future__ import annotations

import dataclasses
import functools
import heapq
import itertools
from collections import Counter
from collections.abc import Callable

import numpy as np

from novacron.errors import InputError
from novacron.placement import Evacuee, Room, plan_evacuation
from novacron.twin.faults import (
    HOST_ACTIONS,
    HOST_FAULTS,
    TwinAction,
    TwinFault,
    apply_fault,
    begin_action,
    fail_host,
    finish_action,
    parse_action,
    parse_fault,
    pick_target_host,
)
from novacron.twin.params import HealerParams, PhysicsParams
from novacron.twin.physics import Physics
from novacron.twin.records import FaultRecord, RunSummary, summarise
from novacron.twin.state import CPU, BoolArray, FleetState, VmStatus
from novacron.twin.topology import Topology
from novacron.twin.workload import Burst, SyntheticWorkload, Workload

__all__ = ["DEFAULT_FAULT_MIX", "Simulator"]

DEFAULT_FAULT_MIX: dict[TwinFault, float] = {
    TwinFault.CRASH: 0.25,
    TwinFault.HANG: 0.15,
    TwinFault.LEAK: 0.15,
    TwinFault.NOISY_NEIGHBOUR: 0.1,
    TwinFault.DISK_FILL: 0.1,
    TwinFault.PARTITION: 0.1,
    TwinFault.THERMAL_RUNAWAY: 0.05,
    TwinFault.HOST_FAILURE: 0.1,
}

_EPS = 1e-9
InFlight = tuple[TwinAction, float, int, int, int]
# Faults that break service the moment they strike; the others build up until a probe fails.
_IMMEDIATE = frozenset({TwinFault.CRASH, TwinFault.HANG, TwinFault.PARTITION, TwinFault.HOST_FAILURE})


class Simulator:
    """A running twin of one fleet."""

    def __init__(
        self,
        topo: Topology,
        *,
        physics: PhysicsParams | None = None,
        healer: HealerParams | None = None,
        workload: Workload | None = None,
        seed: int = 0,
        t0: float = 0.0,
        state: FleetState | None = None,
    ) -> None:
        self.topo = topo
        self.params = physics or PhysicsParams()
        self.healer_params = healer or HealerParams()
        self.workload: Workload = workload or SyntheticWorkload(n_groups=topo.n_groups)
        if self.workload.n_groups != topo.n_groups:
            raise InputError(
                f"workload has {self.workload.n_groups} groups, fleet has {topo.n_groups}",
                where="workload.n_groups",
            )
        self.rng = np.random.default_rng(seed)
        if state is not None and state.topo is not topo:
            raise InputError("state belongs to another topology", where="state")
        self.state = state if state is not None else FleetState.initial(topo, self.params, t0)
        t0 = self.state.t
        self.physics = Physics(topo, self.params)
        self.records: list[FaultRecord] = []
        self.open_faults: dict[int, FaultRecord] = {}
        self.actions: Counter[str] = Counter()
        self.reserved_cpu = np.zeros(topo.n_hosts)  # CPU promised to migrations in flight
        self.reserved_mem_gb = np.zeros(topo.n_hosts)  # and memory
        # in flight, keyed by host (host actions) or VM: (kind, done-time, vm, host, target)
        self.host_actions: dict[int, InFlight] = {}
        self.vm_actions: dict[int, InFlight] = {}
        self.on_action_done: list[Callable[[TwinAction, int, int], None]] = []
        # Told the moment a VM's process dies (crash fault, OOM kill): the twin's pidfd.
        self.on_vm_crashed: list[Callable[[int], None]] = []
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._avail_sum = 0.0
        self._avail_n = 0
        self.next_probe = t0 + self.healer_params.probe_interval_s
        # Told every probe round's health vector (a healer attaches here from outside).
        self.on_probe: list[Callable[[BoolArray], None]] = []
        if state is None:
            self.physics.step(self.state, self.workload.multipliers(t0), 0.0)

    # -- time -----------------------------------------------------------------------------

    @property
    def now(self) -> float:
        """Simulated seconds."""
        return self.state.t

    def schedule(self, t: float, fn: Callable[[], None]) -> None:
        """Run ``fn`` at the first step boundary at or after simulated time ``t``."""
        heapq.heappush(self._heap, (t, next(self._seq), fn))

    def next_event_time(self) -> float | None:
        """When the earliest pending event is due, if any."""
        return self._heap[0][0] if self._heap else None

    def _run_due(self) -> None:
        heap, now = self._heap, self.state.t + _EPS
        while heap and heap[0][0] <= now:
            heapq.heappop(heap)[2]()

    def step(self) -> None:
        """Advance exactly one fixed step."""
        self.advance_to(self.state.t + self.params.dt_s)

    def advance_to(self, t_end: float) -> None:
        """Run physics, events and probes until simulated time ``t_end``."""
        if t_end < self.state.t - _EPS:
            raise InputError(f"cannot go back from {self.state.t} to {t_end}", where="advance_to")
        state, dt, physics, workload = self.state, self.params.dt_s, self.physics, self.workload
        while state.t < t_end - _EPS:
            self._run_due()
            h = min(dt, t_end - state.t)
            events = physics.step(state, workload.multipliers(state.t), h)
            if events.overheated_hosts.size:
                for host in events.overheated_hosts:
                    fail_host(state, int(host))
            if events.oom_vms.size:
                for vm in events.oom_vms:
                    state.set_status(int(vm), VmStatus.CRASHED)
                    self._crashed(int(vm))
            if state.t >= self.next_probe - _EPS:
                self._probe()
        self._run_due()

    def _probe(self) -> None:
        self.next_probe += self.healer_params.probe_interval_s
        ok = self.state.vm_ok(self.params)
        self._avail_sum += float(ok.mean()) if ok.size else 1.0
        self._avail_n += 1
        self._check_recoveries(ok)
        for listener in self.on_probe:
            listener(ok)

    # -- faults ---------------------------------------------------------------------------

    def inject_fault(self, vm: int, kind: str | TwinFault) -> int:
        """Strike VM ``vm`` (or its host) with a fault now; returns the fault record's id."""
        fault = parse_fault(kind)
        self._check_vm(vm)
        rec = FaultRecord(len(self.records), fault, vm, int(self.state.vm_host[vm]), self.state.t)
        self.records.append(rec)
        self.open_faults[rec.id] = rec
        was_crashed = self.state.status[vm] == VmStatus.CRASHED
        apply_fault(self.state, self.params, vm, fault)
        if fault in _IMMEDIATE:
            rec.t_impact = rec.t_inject
        if not was_crashed and self.state.status[vm] == VmStatus.CRASHED:
            self._crashed(vm)
        return rec.id

    def _crashed(self, vm: int) -> None:
        for hook in self.on_vm_crashed:
            hook(vm)

    def schedule_fault(self, t: float, vm: int, kind: str | TwinFault) -> None:
        """Inject a fault at simulated time ``t``."""
        fault = parse_fault(kind)
        self._check_vm(vm)
        self.schedule(t, functools.partial(self._inject_at, t, vm, fault))

    def _inject_at(self, t: float, vm: int, fault: TwinFault) -> None:
        rec = self.records[self.inject_fault(vm, fault)]
        rec.t_inject = t
        if rec.t_impact is not None:
            rec.t_impact = t

    def schedule_random_faults(
        self, per_hour: float, horizon_s: float, mix: dict[TwinFault, float] | None = None
    ) -> int:
        """Poisson fault arrivals over the next ``horizon_s`` at a fleet-wide rate; returns the count."""
        if per_hour < 0 or not np.isfinite(per_hour):
            raise InputError(f"must be finite and >= 0, got {per_hour}", where="fault_rate")
        mix = mix or DEFAULT_FAULT_MIX
        kinds = list(mix)
        weights = np.array([mix[k] for k in kinds], dtype=np.float64)
        if (weights < 0).any() or weights.sum() <= 0:
            raise InputError("weights must be >= 0 and not all zero", where="fault_mix")
        count = int(self.rng.poisson(per_hour * horizon_s / 3600.0))
        times = self.state.t + self.rng.uniform(0.0, horizon_s, count)
        vms = self.rng.integers(0, self.topo.n_vms, count)
        picks = self.rng.choice(len(kinds), size=count, p=weights / weights.sum())
        for t, vm, k in zip(times, vms, picks, strict=True):
            self.schedule_fault(float(t), int(vm), kinds[int(k)])
        return count

    def schedule_bursts(self, bursts: list[Burst]) -> None:
        """Add demand spikes (start and end events) to the heap."""
        for b in bursts:
            self._check_vm(b.vm)
            self.schedule(b.t, functools.partial(self._burst, b.vm, b.cores))
            self.schedule(b.t + b.duration_s, functools.partial(self._burst, b.vm, -b.cores))

    def _burst(self, vm: int, cores: float) -> None:
        self.state.set_vm_extra_cpu(vm, max(0.0, self.state.vm_extra_cpu[vm] + cores))

    def _check_vm(self, vm: int) -> None:
        if not 0 <= vm < self.topo.n_vms:
            raise InputError(f"{vm} is not a VM (0..{self.topo.n_vms - 1})", where="vm")

    def _check_host(self, host: int) -> None:
        if not 0 <= host < self.topo.n_hosts:
            raise InputError(f"{host} is not a host (0..{self.topo.n_hosts - 1})", where="host")

    # -- actions --------------------------------------------------------------------------

    def action_duration(self, kind: TwinAction) -> float:
        """How long an action of ``kind`` takes, from the healer parameters."""
        hp = self.healer_params
        return {
            TwinAction.RESTART: hp.restart_s,
            TwinAction.MIGRATE: hp.migrate_s,
            TwinAction.REPLACE: hp.replace_s,
            TwinAction.CLEANUP: hp.cleanup_s,
            TwinAction.REROUTE: hp.reroute_s,
            TwinAction.REALLOCATE: hp.reallocate_s,
        }[kind]

    def apply_action(self, vm: int, kind: str | TwinAction, *, dst: int | None = None) -> float:
        """Start an action on VM ``vm`` (host actions act on its host); returns its done-time.

        Idempotent while in flight: asking again for the same action returns the same time.
        """
        action = parse_action(kind)
        self._check_vm(vm)
        state, host = self.state, int(self.state.vm_host[vm])
        running = self.host_actions if action in HOST_ACTIONS else self.vm_actions
        key = host if action in HOST_ACTIONS else vm
        if key in running:
            return running[key][1]
        target = -1
        if action is TwinAction.MIGRATE:
            target = self._migration_target(vm, host, dst)
        done = state.t + self.action_duration(action)
        running[key] = (action, done, vm, host, target)
        self.actions[action.value] += 1
        begin_action(state, action, vm)
        self.schedule(done, functools.partial(self._finish, action, vm, host, target))
        return done

    def fork(self, *, workload: Workload | None = None, dt_s: float | None = None) -> Simulator:
        """A copy of the present (state and actions in flight) without healer or future events.

        Pending fault arrivals and bursts belong to this run's future and are not carried
        over; what-if and forecasts reason about the present plus what they add.
        """
        physics = self.params if dt_s is None else dataclasses.replace(self.params, dt_s=dt_s)
        twin = Simulator(
            self.topo,
            physics=physics,
            workload=workload or self.workload,
            healer=dataclasses.replace(self.healer_params, enabled=False),
            state=self.state.copy(),
        )
        twin.reserved_cpu = self.reserved_cpu.copy()
        twin.reserved_mem_gb = self.reserved_mem_gb.copy()
        twin.next_probe = self.next_probe
        for table, mine in ((twin.host_actions, self.host_actions), (twin.vm_actions, self.vm_actions)):
            for key, (kind, done, vm, host, target) in mine.items():
                table[key] = (kind, done, vm, host, target)
                twin.schedule(done, functools.partial(twin._finish, kind, vm, host, target))
        return twin

    def _migration_target(self, vm: int, host: int, dst: int | None) -> int:
        if dst is not None:
            if not 0 <= dst < self.topo.n_hosts:
                raise InputError(f"{dst} is not a host (0..{self.topo.n_hosts - 1})", where="dst")
            target = dst
        else:
            target = pick_target_host(self.state, self.params, host, self.reserved_cpu)
        if target >= 0:
            self.reserved_cpu[target] += self.topo.vm_cpu[vm]
            self.reserved_mem_gb[target] += self.topo.vm_mem_gb[vm]
        return target

    def evacuate(self, host: int) -> list[tuple[int, int | None]]:
        """The twin's host-failure model: migrate every VM off ``host`` as the shared plan places it.

        The plan (:func:`~novacron.placement.plan_evacuation`, the one the real VM
        host failover uses) puts the VMs not already being acted on, highest priority
        first, on the healthy hosts with the most free memory that still fit them (memory
        and CPU of migrations in flight count as taken). Returns each VM with its new
        host; a VM no host has room for (None) stays where it is.
        """
        self._check_host(host)
        s, topo = self.state, self.topo
        on_host = np.flatnonzero((s.vm_host == host) & (s.status != VmStatus.ACTING))
        guests = [
            Evacuee(int(v), float(topo.vm_mem_gb[v]), float(topo.vm_cpu[v]), int(topo.vm_priority[v])) for v in on_host
        ]
        plan = plan_evacuation(guests, self._rooms(exclude=host))
        for vm, dst in plan:
            if dst is not None:
                self.apply_action(vm, TwinAction.MIGRATE, dst=dst)
        return plan

    def _rooms(self, *, exclude: int) -> list[Room[int]]:
        """Each healthy host's free memory and CPU (base demand of its running VMs and migrations in flight taken)."""
        s, topo = self.state, self.topo
        ok = s.host_ok(self.params) & ~s.throttled
        ok[exclude] = False
        free_mem = topo.host_mem_gb - s.host_mem_gb - self.reserved_mem_gb
        free_cpu = topo.host_cores - s.agg[CPU].sum(axis=1) - self.reserved_cpu
        return [Room(int(h), float(free_mem[h]), float(free_cpu[h])) for h in np.flatnonzero(ok)]

    def _finish(self, action: TwinAction, vm: int, host: int, target: int) -> None:
        if action in HOST_ACTIONS:
            self.host_actions.pop(host, None)
        else:
            self.vm_actions.pop(vm, None)
        if target >= 0:
            self.reserved_cpu[target] -= self.topo.vm_cpu[vm]
            self.reserved_mem_gb[target] -= self.topo.vm_mem_gb[vm]
        finish_action(self.state, self.params, action, vm, host, target)
        for hook in self.on_action_done:
            hook(action, vm, host)
        self._check_recoveries(None)

    # -- health and records ---------------------------------------------------------------

    def vm_health(self, vm: int) -> bool:
        """Would VM ``vm`` pass its health probe now?"""
        self._check_vm(vm)
        s, h = self.state, int(self.state.vm_host[vm])
        if s.status[vm] != VmStatus.UP or not s.host_up[h]:
            return False
        reachable = self.topo.n_links == 0 or s.host_degree[h] > 0
        disk_ok = s.disk_used_gb[h] < self.topo.host_disk_gb[h]
        latency = s.cpu_latency_of(vm) + s.io_latency_s[h] + s.net_latency_s[h]
        fast = float(latency) <= self.params.probe_timeout_s
        return bool(reachable) and bool(disk_ok) and fast

    def note_detected(self, vm: int) -> None:
        """The healer noticed VM ``vm``: stamp open faults on it (or on its host) as detected."""
        host = int(self.state.vm_host[vm])
        for rec in self.open_faults.values():
            if rec.t_detect is None and (rec.vm == vm or (rec.kind in HOST_FAULTS and rec.host == host)):
                rec.t_detect = self.state.t

    def _cause_gone(self, rec: FaultRecord) -> bool:
        s, vm, h = self.state, rec.vm, rec.host
        kind = rec.kind
        if kind in HOST_FAULTS and s.vm_host[vm] != h:
            return True  # the VM was moved away from the broken host
        if kind is TwinFault.LEAK:
            return bool(s.leak_gb_s[vm] == 0.0)
        if kind is TwinFault.NOISY_NEIGHBOUR:
            return bool(s.vm_extra_cpu[vm] < self.params.noisy_extra_cores)
        if kind is TwinFault.DISK_FILL:
            return bool(s.disk_fill_gb_s[h] == 0.0)
        if kind is TwinFault.PARTITION:
            return self.topo.n_links == 0 or bool(s.host_degree[h] > 0)
        if kind is TwinFault.THERMAL_RUNAWAY:
            return bool(s.cooling[h] >= 1.0)
        if kind is TwinFault.HOST_FAILURE:
            return bool(s.host_up[h])
        return True  # crash, hang: a healthy probe is all it takes

    def _check_recoveries(self, ok: BoolArray | None) -> None:
        if not self.open_faults:
            return
        done = []
        for fid, rec in self.open_faults.items():
            healthy = bool(ok[rec.vm]) if ok is not None else self.vm_health(rec.vm)
            if not healthy and rec.t_impact is None:
                rec.t_impact = self.state.t
            if not healthy:
                continue
            if self._cause_gone(rec):
                rec.t_recover = self.state.t
                done.append(fid)
            elif rec.kind not in _IMMEDIATE:
                # Serving again while the cause still builds up: that outage was something
                # else (a restart, a burst); this fault's impact has not begun.
                rec.t_impact = None
        for fid in done:
            del self.open_faults[fid]

    def availability(self) -> float:
        """Mean fraction of healthy VMs over the probes so far (1.0 before any probe)."""
        return self._avail_sum / self._avail_n if self._avail_n else 1.0

    def summary(self) -> RunSummary:
        """Totals so far."""
        return summarise(self.records, self.actions, self.availability(), self.state.t)
