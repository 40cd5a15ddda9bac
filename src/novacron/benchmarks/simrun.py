"""The real controller flow on a simulated fleet: ``sim://`` sensor and actuator, twin clock.

:class:`SimController` wires the production pieces exactly as
:class:`~novacron.controller.Controller` does — :class:`~novacron.sensors.probes.Prober` →
:class:`~novacron.healing.health.HealthTracker` → :class:`~novacron.incidents.lifecycle.IncidentManager`
(root-cause diagnosis over ``depends_on``, flap quarantine) → :class:`~novacron.healing.healer.Healer`
→ :class:`~novacron.healing.executor.Executor` → :class:`~novacron.healing.safety.SafetyGate`
→ actuator, with a :class:`~novacron.store.Store` — but with the twin's VMs as targets:
probes come from :class:`~novacron.sensors.sim.SimSensor`, actions land in
:class:`~novacron.actuators.sim.SimActuator`, and time is the twin's :class:`~novacron.twin.SimClock`
(run it under :func:`~novacron.benchmarks.simloop.run_simulated`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from novacron.actuators.sim import SimActuator
from novacron.diagnosis.rootcause import rank_root_causes
from novacron.healing.approvals import Approvals
from novacron.healing.executor import Executor
from novacron.healing.healer import Healer
from novacron.healing.health import HealthTracker
from novacron.healing.safety import SafetyGate
from novacron.incidents.lifecycle import IncidentManager
from novacron.model import Fault, Health, Incident, IncidentStatus, Priority, TargetId, TimelineEvent
from novacron.sensors.probes import Prober
from novacron.sensors.sim import SimSensor
from novacron.settings import Policy
from novacron.store import Store
from novacron.telemetry import Metrics, get_logger
from novacron.twin.clock import SimClock

__all__ = ["PROBE_SOURCE", "SimController", "SimTargets"]

PROBE_SOURCE = "sim:0"
_HOUSEKEEPING_S = 0.5


@dataclass(frozen=True, slots=True)
class SimTargets:
    """How the controller watches the sim fleet (the part of a TargetSpec that matters here)."""

    vms: Mapping[str, int]  # target name → twin VM
    depends_on: Mapping[str, list[str]] = field(default_factory=dict)
    probe_interval_s: float = 5.0
    probe_timeout_s: float = 1.0
    failures: int = 2
    start_timeout_s: float = 10.0


ExecutorFactory = Callable[..., Executor]


class SimController:
    """One simulated fleet, one loop, one executor — the controller's flow on the twin."""

    def __init__(
        self,
        clock: SimClock,
        targets: SimTargets,
        policy: Policy,
        *,
        store_url: str = "sqlite:///:memory:",
        metrics: Metrics | None = None,
        seed: int | None = None,
        executor_factory: ExecutorFactory = Executor,
    ) -> None:
        self.clock = clock
        self.sim = clock.sim
        self.targets = targets
        self.policy = policy
        self.metrics = metrics or Metrics()
        self.store = Store.open(store_url)
        self.gate = SafetyGate(policy, clock, fleet_size=len(targets.vms), seed=seed)
        self.approvals = Approvals()
        self.health = HealthTracker(clock, on_fault=self._on_fault, on_recovered=self._on_recovered)
        self.incidents = IncidentManager(self.store, clock, self.metrics, on_change=self._on_incident_change)
        self.sensor = SimSensor(self.sim, targets.vms)
        self.actuator = SimActuator(self.sim, clock, self.sensor, listener=self)
        self.executor = executor_factory(
            store=self.store,
            actuator=self.actuator,
            gate=self.gate,
            health=self.health,
            incidents=self.incidents,
            approvals=self.approvals,
            metrics=self.metrics,
            clock=clock,
        )
        self.healer = Healer(self.executor, self.incidents, clock)
        self.prober = Prober(clock, self.health.observe)
        self.listeners: list[Callable[[Incident, TimelineEvent], None]] = []
        self._healing: dict[str, asyncio.Task[None]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._log = get_logger(component="sim-controller")

    # -- lifecycle ---------------------------------------------------------------------
    async def start(self) -> None:
        """Configure every target, start probing and housekeeping."""
        t = self.targets
        for name in t.vms:
            self.health.configure(name, 0, {PROBE_SOURCE: t.failures}, t.start_timeout_s)
            self.prober.add(
                TargetId(name),
                0,
                PROBE_SOURCE,
                self.sensor.probe(name),
                interval=t.probe_interval_s,
                timeout=t.probe_timeout_s,
            )
            self.health.process_started(name, 0)  # the twin's VMs are up when the run begins
        self.sensor.watch_exits(self._on_crashed)
        for incident in self.incidents.load_open():
            self._spawn_healer(incident)
        self._tasks.append(asyncio.get_running_loop().create_task(self._housekeeping(), name="housekeeping"))

    async def stop(self) -> None:
        """Stop healing, probing and the store."""
        for task in [*self._tasks, *self._healing.values()]:
            task.cancel()
        await asyncio.gather(*self._tasks, *self._healing.values(), return_exceptions=True)
        self._tasks.clear()
        self._healing.clear()
        await self.prober.close()
        self.store.close()

    @property
    def healing(self) -> int:
        """Incidents with a healer running now."""
        return len(self._healing)

    # -- the listener the actuator and sensor talk to ------------------------------------
    def on_started(self, target: str, replica: int) -> None:
        """A VM's process is up again: it must prove itself, and is probed quickly."""
        self.health.process_started(target, replica)
        self.prober.expedite(target, replica, self.targets.start_timeout_s)

    def on_exited(self, target: str, replica: int, *, expected: bool) -> None:
        """A VM's process stopped: a crash unless an action stopped it."""
        self.health.process_exited(target, replica, None, expected=expected)

    def _on_crashed(self, target: str) -> None:
        self.on_exited(target, 0, expected=False)

    # -- the flow (as Controller) ------------------------------------------------------
    def _on_fault(self, fault: Fault) -> None:
        incident, new = self.incidents.on_fault(fault)
        if not new:
            if fault.target not in self._healing and incident.status is IncidentStatus.OPEN:
                self._spawn_healer(incident)
            return
        self.sim.note_detected(self.sensor.vm(fault.target))
        self._diagnose(incident)
        flap = self.policy.flap
        if self.gate.record_incident(fault.target):
            reason = f"flapping: {flap.threshold} incidents within {flap.window_s:g}s; quarantined"
            self.incidents.escalate(incident, reason, priority=Priority.P1)
            return
        if self.gate.is_quarantined(fault.target):
            self.incidents.escalate(incident, "target is quarantined for flapping", priority=Priority.P1)
            return
        self._spawn_healer(incident)

    def _diagnose(self, incident: Incident) -> None:
        graph = {name: list(self.targets.depends_on.get(name, [])) for name in self.targets.vms}
        failing = {name for name in graph if self.health.health(name) is not Health.HEALTHY}
        failing.add(incident.target)
        causes = rank_root_causes(incident.target, graph, failing)
        best = causes[0]
        self.incidents.event(
            incident,
            "diagnosed",
            best.reason,
            root_cause=best.target,
            candidates=[{"target": c.target, "score": round(c.score, 2)} for c in causes[:5]],
        )

    def _spawn_healer(self, incident: Incident) -> None:
        if incident.target in self._healing:
            return
        task = asyncio.get_running_loop().create_task(self.healer.heal(incident, [0]), name=f"heal:{incident.id}")
        self._healing[incident.target] = task
        task.add_done_callback(lambda t: self._healer_done(incident.target, t))

    def _healer_done(self, target: str, task: asyncio.Task[None]) -> None:
        if self._healing.get(target) is task:
            del self._healing[target]
        if not task.cancelled() and task.exception() is not None:
            self._log.error("healer failed", target=target, error=repr(task.exception()))

    def _on_recovered(self, target: TargetId) -> None:
        incident = self.incidents.open_for(target)
        if incident is not None and target not in self._healing:
            self.incidents.resolve(incident, healed_by="recovered without further action")

    def _on_incident_change(self, incident: Incident, event: TimelineEvent) -> None:
        for listener in self.listeners:
            listener(incident, event)

    async def _housekeeping(self) -> None:
        while True:
            self.health.check_start_timeouts()
            await self.clock.sleep(_HOUSEKEEPING_S)
