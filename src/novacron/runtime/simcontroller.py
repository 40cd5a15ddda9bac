"""The real controller flow on a simulated fleet: ``sim://`` sensor and actuator, twin clock.

:class:`SimController` runs the same flow as :class:`~novacron.runtime.controller.Controller`,
built by the same :func:`~novacron.runtime.compose.compose` — :class:`~novacron.healing.health.HealthTracker`
→ :class:`~novacron.incidents.lifecycle.IncidentManager` (root-cause diagnosis over
``depends_on``, flap quarantine) → :class:`~novacron.healing.healer.Healer` →
:class:`~novacron.healing.executor.Executor` → :class:`~novacron.healing.safety.SafetyGate`
→ actuator, with a :class:`~novacron.store.Store` and the real
:class:`~novacron.sensors.probes.Prober` — but with the twin's VMs as targets: probes come
from :class:`~novacron.sensors.sim.SimSensor`, actions land in
:class:`~novacron.actuators.sim.SimActuator`, and time is the twin's
:class:`~novacron.twin.SimClock` (run it under :func:`~novacron.runtime.simloop.run_simulated`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from novacron.actuators.sim import SimActuator
from novacron.healing.advice import Advisor
from novacron.model import Incident, TargetId, TimelineEvent
from novacron.runtime.compose import compose, observe_proving
from novacron.sensors.probes import Prober
from novacron.sensors.sim import SimSensor
from novacron.settings import Policy
from novacron.telemetry import Metrics
from novacron.twin.clock import SimClock

__all__ = ["PROBE_SOURCE", "AdvisorFactory", "SimController", "SimTargets"]

PROBE_SOURCE = "sim:0"


@dataclass(frozen=True, slots=True)
class SimTargets:
    """How the controller watches the sim fleet (the part of a TargetSpec that matters here)."""

    vms: Mapping[str, int]  # target name → twin VM
    depends_on: Mapping[str, Sequence[str]] = field(default_factory=dict)
    probe_interval_s: float = 5.0
    probe_timeout_s: float = 1.0
    failures: int = 2
    start_timeout_s: float = 10.0


AdvisorFactory = Callable[[SimSensor, Policy], Advisor[Any]]


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
        advisor_factory: AdvisorFactory | None = None,
    ) -> None:
        """``advisor_factory`` builds the healer's advisor (e.g. the twin's what-if) from the sensor."""
        self.clock = clock
        self.sim = clock.sim
        self.targets = targets
        self.policy = policy
        self.metrics = metrics or Metrics()
        self.sensor = SimSensor(self.sim, targets.vms)
        self.actuator = SimActuator(self.sim, clock, self.sensor, listener=self)
        parts = compose(
            graph={name: list(targets.depends_on.get(name, [])) for name in targets.vms},
            policy=policy,
            store_url=store_url,
            actuator=self.actuator,
            clock=clock,
            metrics=self.metrics,
            seed=seed,
            advisor=None if advisor_factory is None else advisor_factory(self.sensor, policy),
            on_new_incident=self._detected,
            component="sim-controller",
        )
        self.store, self.gate, self.approvals, self.flow = parts.store, parts.gate, parts.approvals, parts.flow
        self.health = self.flow.health
        self.incidents = self.flow.incidents
        self.executor = self.flow.executor
        self.healer = self.flow.healer
        self.listeners: list[Callable[[Incident, TimelineEvent], None]] = self.flow.listeners
        self.prober = Prober(clock, lambda obs: observe_proving(self.health, self.prober, obs))

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
        self.flow.resume()
        self.flow.start()

    async def stop(self) -> None:
        """Stop healing, probing and the store."""
        await self.flow.stop()
        await self.prober.close()
        self.store.close()

    @property
    def healing(self) -> int:
        """Incidents with a healer running now."""
        return self.flow.healing

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

    def _detected(self, incident: Incident) -> None:
        # The twin's ground truth stamps the fault as detected when the controller opens it.
        self.sim.note_detected(self.sensor.vm(incident.target))
