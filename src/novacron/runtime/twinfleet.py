"""The twin behind a spec's ``kind: sim`` targets, for the one real controller.

:class:`SimFleet` builds a :class:`~novacron.twin.sim.Simulator` from the spec's ``twin``
block (one twin VM per sim target), the ``sim://`` sensor (which answers the targets'
checks, with upstream and bad-configuration effects) and actuator, and schedules the
block's faults. Under ``novacron run`` the twin keeps pace with the wall clock (a task
advances it every ``dt_s``); under a :class:`~novacron.twin.clock.SimClock` the simulated
event loop moves it, and an hour of faults and repairs takes seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from typing import Protocol

from novacron.actuators.sim import SimActuator
from novacron.clock import Clock
from novacron.errors import ConfigError
from novacron.sensors.sim import SimSensor
from novacron.settings import FleetSpec, TwinSettings
from novacron.twin.clock import SimClock
from novacron.twin.faults import TwinAction, TwinFault, finish_action
from novacron.twin.params import HealerParams, PhysicsParams
from novacron.twin.sim import Simulator
from novacron.twin.state import VmStatus
from novacron.twin.topology import build_fleet

__all__ = ["SENSOR_FAULTS", "SimFleet", "SimHooks", "build_twin_simulator", "sim_targets"]

# Faults the sensor models above the VMs (see novacron.sensors.sim); the rest are the twin's.
SENSOR_FAULTS = frozenset({"bad_config"})
_DEFAULT_MIX = {"crash": 0.5, "hang": 0.5}
_RANDOM_HORIZON_S = 30 * 86_400.0


class SimHooks(Protocol):
    """What the controller hears from its sim targets (as from its processes)."""

    def sim_started(self, target: str) -> None:
        """The target's VM runs again after an action: verify it quickly."""

    def sim_exited(self, target: str, *, expected: bool) -> None:
        """The target's VM stopped: a crash unless ``expected``."""


def sim_targets(spec: FleetSpec) -> dict[str, int]:
    """Sim target name → twin VM index, in spec order."""
    return {t.name: i for i, t in enumerate(t for t in spec.targets if t.kind == "sim")}


def _probe_interval(spec: FleetSpec) -> float:
    intervals = [c.interval_s for t in spec.targets if t.kind == "sim" for c in t.checks if hasattr(c, "interval_s")]
    return min(intervals, default=1.0)


def build_twin_simulator(spec: FleetSpec) -> Simulator:
    """A fresh simulator for the spec's sim targets, timed by its ``twin`` block."""
    twin = spec.twin
    if twin is None:
        raise ConfigError("the spec has no twin block", where="twin")
    vms = len(sim_targets(spec))
    # Sim targets are VMs 0..n-1; other tenants' VMs follow, spread over the hosts in turn.
    topo = build_fleet(twin.hosts or max(1, vms), vms + twin.neighbours, seed=twin.seed)
    healer = HealerParams(
        probe_interval_s=_probe_interval(spec),
        restart_s=twin.restart_s,
        migrate_s=twin.replace_s,
        replace_s=twin.host_repair_s,
        cleanup_s=twin.cleanup_s,
        reallocate_s=twin.reallocate_s,
        enabled=False,
    )
    physics = PhysicsParams(dt_s=twin.dt_s, leak_gb_per_s=twin.leak_gb_per_s)
    return Simulator(topo, physics=physics, healer=healer, seed=twin.seed)


class SimFleet:
    """Sensor, actuator and time for a spec's sim targets."""

    def __init__(self, spec: FleetSpec, clock: Clock, hooks: SimHooks, *, sim: Simulator | None = None) -> None:
        """``sim`` is the simulator a :class:`SimClock` already drives (default: a new one)."""
        self.spec = spec
        self.settings: TwinSettings = spec.twin or TwinSettings()
        self.clock = clock
        self.hooks = hooks
        self.sim = sim if sim is not None else build_twin_simulator(spec)
        self.targets = sim_targets(spec)
        upstreams = {t.name: t.depends_on for t in spec.targets if t.kind == "sim"}
        latencies = {name: (lat.p50_s, lat.p99_s) for name, lat in self.settings.latency.items()}
        self.sensor = SimSensor(
            self.sim,
            self.targets,
            upstreams=upstreams,
            latency_s=self.settings.probe_latency_s,
            latencies=latencies,
            seed=self.settings.seed,
        )
        self.actuator = SimActuator(
            self.sim, clock, self.sensor, listener=self, stop_s=self.settings.stop_s, decide_s=self.settings.decide_s
        )
        self._driver: asyncio.Task[None] | None = None
        self.injected: list[tuple[float, str, str]] = []  # (sim time, target, kind)

    @property
    def simulated_time(self) -> bool:
        """Whether a :class:`SimClock` drives the loop (else the twin follows the wall clock)."""
        return isinstance(self.clock, SimClock)

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        """Watch crashes, schedule the spec's faults, and (in real time) keep the twin moving."""
        self.sensor.watch_exits(lambda target: self.hooks.sim_exited(target, expected=False))
        t0 = self.sim.now
        for fault in self.settings.faults:
            self.sim.schedule(t0 + fault.at_s, functools.partial(self.inject, fault.target, fault.kind))
        if self.settings.fault_rate_per_hour > 0:
            self._schedule_random(self.settings.fault_rate_per_hour)
        if not self.simulated_time:
            self._driver = asyncio.get_running_loop().create_task(self._follow_wall_clock(), name="twin")

    async def stop(self) -> None:
        """Stop moving the twin."""
        if self._driver is not None:
            self._driver.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._driver
            self._driver = None

    async def _follow_wall_clock(self) -> None:
        start, base = self.clock.monotonic(), self.sim.now
        step = self.settings.dt_s
        while True:
            await self.clock.sleep(step)
            self.sim.advance_to(base + self.clock.monotonic() - start)

    def _schedule_random(self, per_hour: float) -> None:
        mix: dict[str, float] = {str(k): v for k, v in self.settings.fault_mix.items()} or dict(_DEFAULT_MIX)
        rng = self.sim.rng
        total = sum(mix.values())
        if total <= 0:
            raise ConfigError("weights must not all be zero", where="twin.fault_mix")
        count = int(rng.poisson(per_hour * _RANDOM_HORIZON_S / 3600.0))
        kinds, names = list(mix), list(self.targets)
        weights = [mix[k] / total for k in kinds]
        for at, pick, who in zip(
            self.sim.now + rng.uniform(0.0, _RANDOM_HORIZON_S, count),
            rng.choice(len(kinds), size=count, p=weights),
            rng.integers(0, len(names), count),
            strict=True,
        ):
            self.sim.schedule(float(at), functools.partial(self.inject, names[int(who)], kinds[int(pick)]))

    # -- faults ------------------------------------------------------------------------
    def inject(self, target: str, kind: str) -> None:
        """Strike ``target`` with ``kind`` now (a twin fault, or a bad configuration).

        A noisy neighbour strikes another tenant's VM on the target's host, when there is one.
        """
        self.injected.append((self.sim.now, target, kind))
        if kind in SENSOR_FAULTS:
            self.sensor.break_config(target)
            return
        vm = self.sensor.vm(target)
        if kind == TwinFault.NOISY_NEIGHBOUR:
            vm = self._neighbour_of(vm)
        self.sim.inject_fault(vm, TwinFault(kind))

    def _neighbour_of(self, vm: int) -> int:
        state = self.sim.state
        host = int(state.vm_host[vm])
        for other in range(len(self.targets), self.sim.topo.n_vms):
            if int(state.vm_host[other]) == host:
                return other
        return vm

    def calm(self) -> None:
        """End every lasting fault at once, as a human's repair would between episodes.

        Bad configurations are rolled back, other tenants quietened, broken hosts and cut
        links repaired, raised CPU shares lowered; crashed or hung targets are left to the controller.
        """
        self.sensor.bad_config.clear()
        state, params = self.sim.state, self.sim.params
        for vm in range(len(self.targets), self.sim.topo.n_vms):
            state.set_vm_extra_cpu(vm, 0.0)
        state.vm_priority[:] = False  # every fault meets the spec's allocation
        for host in range(self.sim.topo.n_hosts):
            cut = state.topo.n_links > 0 and state.host_degree[host] == 0
            if not state.host_up[host] or state.cooling[host] < 1.0 or state.disk_fill_gb_s[host] > 0 or cut:
                finish_action(state, params, TwinAction.REPLACE, -1, host)

    # -- what the controller asks ------------------------------------------------------
    def running(self, target: str) -> int:
        """1 while the target's VM process runs (up or hung), else 0."""
        status = VmStatus(int(self.sim.state.status[self.sensor.vm(target)]))
        return int(status in (VmStatus.UP, VmStatus.HUNG))

    def host_of(self, target: str) -> str:
        """The twin host ``target``'s VM runs on now (placement, as a cloud's API reports it)."""
        return f"twin-host-{int(self.sim.state.vm_host[self.sensor.vm(target)])}"

    def host_load(self, host: str) -> float | None:
        """A twin host's CPU utilisation (its node metrics), None while it is down or cut off."""
        index = int(host.removeprefix("twin-host-"))
        state = self.sim.state
        cut = self.sim.topo.n_links > 0 and state.host_degree[index] == 0
        if not state.host_up[index] or cut:
            return None
        return float(state.util[index])

    # -- SimListener (from the actuator) -----------------------------------------------
    def on_started(self, target: str, replica: int) -> None:
        """An action brought the VM's process back."""
        self.hooks.sim_started(target)

    def on_exited(self, target: str, replica: int, *, expected: bool) -> None:
        """An action stopped the VM's process."""
        self.hooks.sim_exited(target, expected=expected)
