"""The controller: wires sensors → health → incidents → healer → executor → actuators on one loop.

It owns start/stop and crash recovery. On start it stores the spec as a config version,
adopts processes a previous controller left running, reloads open incidents and resumes
their ladders (in-flight actions are reconciled, never re-applied), then starts whatever
is missing.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from novacron.actuators.base import ActuatorRouter
from novacron.actuators.process import ProcessActuator, fill_placeholders
from novacron.clock import Clock, MonotonicClock
from novacron.diagnosis.rootcause import rank_root_causes
from novacron.errors import InputError, NotFoundError
from novacron.healing.approvals import Approvals
from novacron.healing.catalog import inverse_of, new_action
from novacron.healing.executor import ExecResult, Executor
from novacron.healing.healer import Healer
from novacron.healing.health import HealthTracker
from novacron.healing.metricfaults import MetricJudge
from novacron.healing.safety import SafetyGate
from novacron.incidents.lifecycle import IncidentManager
from novacron.model import (
    ActionKind,
    Fault,
    Health,
    Incident,
    IncidentStatus,
    Observation,
    Priority,
    TargetId,
    TimelineEvent,
)
from novacron.sensors.heartbeat import HeartbeatMonitor
from novacron.sensors.metrics import MetricsScraper
from novacron.sensors.probes import Prober, make_probe
from novacron.settings import FleetSpec, HeartbeatCheck, TargetSpec, load_spec, spec_to_yaml
from novacron.store import ProcessRecord, Store, TargetStatusRow
from novacron.telemetry import Metrics, get_logger

__all__ = ["Controller", "TargetView"]


def _remedy_plan(fault: Fault) -> tuple[list[ActionKind], dict[str, Any]]:
    """The ladder a predicted fault asks for: its remedy first, then the usual fallbacks."""
    remedy = ActionKind(fault.evidence["remedy"])
    ladder = [remedy, ActionKind.REPLACE] if remedy is ActionKind.RESTART else [remedy]
    return [*ladder, ActionKind.ESCALATE], dict(fault.evidence.get("remedy_params") or {})


_STATUS_EVERY_S = 0.5
_KILL_SWITCH_KEY = "autonomous_enabled"


@dataclass(frozen=True, slots=True)
class TargetView:
    """One line of fleet status."""

    target: str
    health: Health
    running: int
    desired: int
    incident: Incident | None


class Controller:
    """One fleet, one loop, one executor."""

    def __init__(
        self,
        spec: FleetSpec,
        *,
        store_url: str | None = None,
        workdir: Path | None = None,
        clock: Clock | None = None,
        metrics: Metrics | None = None,
        seed: int | None = None,
        spec_source: str = "spec",
    ) -> None:
        self.spec = spec
        self.clock = clock or MonotonicClock()
        self.metrics = metrics or Metrics()
        self.workdir = workdir or Path(spec.controller.workdir)
        self.store = Store.open(store_url or spec.controller.store_url)
        self._spec_source = spec_source
        self.gate = SafetyGate(spec.policy, self.clock, fleet_size=len(spec.targets), seed=seed)
        self.approvals = Approvals()
        self.health = HealthTracker(self.clock, on_fault=self._on_fault, on_recovered=self._on_recovered)
        self.incidents = IncidentManager(self.store, self.clock, self.metrics, on_change=self._on_incident_change)
        self.actuator = ProcessActuator(spec, clock=self.clock, log_dir=self.workdir / "logs", listener=self)
        router = ActuatorRouter(lambda t: spec.target(t).kind, {"process": self.actuator})
        self.executor = Executor(
            store=self.store,
            actuator=router,
            gate=self.gate,
            health=self.health,
            incidents=self.incidents,
            approvals=self.approvals,
            metrics=self.metrics,
            clock=self.clock,
        )
        self.healer = Healer(self.executor, self.incidents, self.clock)
        self.judge = MetricJudge(spec, self.clock, self._on_fault)
        self.prober = Prober(self.clock, self._observe)
        self.heartbeats = HeartbeatMonitor(self.clock, self.health.observe)
        self.scraper = MetricsScraper(self.clock, self.judge.observe)
        self._plans: dict[str, tuple[list[ActionKind], dict[str, Any]]] = {}
        self._target_names = frozenset(t.name for t in spec.targets)
        self.listeners: list[Callable[[Incident, TimelineEvent], None]] = []
        self._healing: dict[str, asyncio.Task[None]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._replica_faults: dict[str, set[int]] = {}
        self._published: dict[str, tuple[str, int, int]] = {}
        self.config_version = 0
        self._log = get_logger(component="controller")

    # -- lifecycle ---------------------------------------------------------------------
    async def start(self) -> None:
        """Recover, start sensors and every missing replica."""
        cfg = self.store.save_config(spec_to_yaml(self.spec), source=self._spec_source, now=self.clock.now())
        self.config_version = cfg.version
        self.gate.enabled = bool(self.store.get_setting(_KILL_SWITCH_KEY, True))
        self.metrics.autonomous.set(int(self.gate.enabled))
        await self.heartbeats.start(port=self.spec.controller.heartbeat_udp_port)
        for tspec in self.spec.targets:
            for replica in range(tspec.replicas):
                self._configure_replica(tspec, replica)
        self._adopt()
        for incident in self.incidents.load_open():
            self._log.info("resuming incident", incident=incident.id, target=incident.target)
            self._spawn_healer(incident)
        await self.actuator.start_all()
        self._tasks.append(asyncio.get_running_loop().create_task(self._housekeeping(), name="housekeeping"))

    async def stop(self, *, stop_targets: bool = True) -> None:
        """Stop healing, sensors and (by default) every replica."""
        for task in [*self._tasks, *self._healing.values()]:
            task.cancel()
        await asyncio.gather(*self._tasks, *self._healing.values(), return_exceptions=True)
        self._tasks.clear()
        self._healing.clear()
        await self.prober.close()
        await self.heartbeats.close()
        await self.scraper.close()
        if stop_targets:
            await self.actuator.stop_all()
        self._publish_status(force=True)
        self.store.close()

    def _adopt(self) -> None:
        for rec in self.store.processes():
            if self.actuator.adopt(rec.target, rec.replica, rec.pid, rec.create_time):
                self._log.info("adopted process", target=rec.target, replica=rec.replica, pid=rec.pid)
                self.health.process_started(rec.target, rec.replica)
                self.prober.expedite(rec.target, rec.replica, self.spec.target(rec.target).start_timeout_s)
            else:
                self.store.remove_process(rec.target, rec.replica)

    def _configure_replica(self, tspec: TargetSpec, replica: int) -> None:
        if replica in self.health.replicas(tspec.name):
            return
        port = None if tspec.port is None else tspec.port + replica

        def fill(s: str) -> str:
            return fill_placeholders(s, name=tspec.name, replica=replica, port=port)

        thresholds: dict[str, int] = {}
        for i, check in enumerate(tspec.checks):
            if isinstance(check, HeartbeatCheck):
                self.heartbeats.register(TargetId(tspec.name), replica, check)
                thresholds["heartbeat"] = 1
                continue
            source = f"{check.type}:{i}"
            thresholds[source] = check.failures
            self.prober.add(
                TargetId(tspec.name),
                replica,
                source,
                make_probe(check, fill),
                interval=check.interval_s,
                timeout=check.timeout_s,
            )
        self.health.configure(tspec.name, replica, thresholds, tspec.start_timeout_s)
        if tspec.metrics is not None:
            self.scraper.add(
                TargetId(tspec.name),
                replica,
                url=fill(tspec.metrics.url) if tspec.metrics.url else None,
                pid_of=lambda: self.actuator.pid_of(tspec.name, replica),
                process=tspec.metrics.process,
                interval_s=tspec.metrics.interval_s,
            )

    # -- process listener (from the actuator) ------------------------------------------
    def on_started(self, target: str, replica: int, pid: int, port: int | None, create_time: float) -> None:
        """A replica was spawned: remember it, and verify it quickly."""
        self._configure_replica(self.spec.target(target), replica)
        self.store.set_process(ProcessRecord(target, replica, pid, create_time, port))
        self.health.process_started(target, replica)
        self.heartbeats.reset(target, replica)
        self.prober.expedite(target, replica, self.spec.target(target).start_timeout_s)

    def on_exited(self, target: str, replica: int, pid: int, code: int | None, expected: bool) -> None:
        """A replica exited: a crash unless we stopped it."""
        self.health.process_exited(target, replica, code, expected=expected)
        if expected and replica >= self.actuator.desired(target):
            self.store.remove_process(target, replica)
            self.health.remove(target, replica)
            self.heartbeats.unregister(target, replica)
            asyncio.get_running_loop().create_task(self.prober.remove(target, replica))

    def on_spawn_failed(self, target: str, replica: int, error: str) -> None:
        """A replica could not be spawned: a start failure, handled like any fault."""
        self.health.spawn_failed(target, replica, error)

    # -- the flow ----------------------------------------------------------------------
    def _observe(self, obs: Observation) -> None:
        """A probe result: health first, then (for watched targets) its latency as a metric."""
        self.health.observe(obs)
        if self.judge.watches(obs.target):
            self.judge.observe(obs)

    def file_fault(self, fault: Fault) -> tuple[Incident, bool]:
        """A fault from outside (an Alertmanager alert): the same path as the controller's own.

        A fault about a fleet target is diagnosed and healed like any other; one about
        anything else is recorded as an incident for a human. Returns (incident, new).
        """
        if fault.target not in self._target_names:
            return self.incidents.on_fault(fault)
        return self._on_fault(fault)

    def _on_fault(self, fault: Fault) -> tuple[Incident, bool]:
        if "replica" in fault.evidence:
            self._replica_faults.setdefault(fault.target, set()).add(int(fault.evidence["replica"]))
        if "remedy" in fault.evidence:
            self._plans[fault.target] = _remedy_plan(fault)
        incident, new = self.incidents.on_fault(fault)
        if not new:
            if fault.target not in self._healing and incident.status is IncidentStatus.OPEN:
                self._spawn_healer(incident)
            return incident, False
        self._diagnose(incident)
        if self.gate.record_incident(fault.target):
            incident = self.incidents.escalate(
                incident,
                f"flapping: {self.spec.policy.flap.threshold} incidents within "
                f"{self.spec.policy.flap.window_s:g}s; quarantined",
                priority=Priority.P1,
            )
        elif self.gate.is_quarantined(fault.target):
            incident = self.incidents.escalate(incident, "target is quarantined for flapping", priority=Priority.P1)
        else:
            self._spawn_healer(incident)
        return incident, True

    def _diagnose(self, incident: Incident) -> None:
        if incident.preventive:
            self.incidents.event(incident, "diagnosed", "preventive: a forecast, not a failure; acting ahead of it")
            return
        graph = {t.name: t.depends_on for t in self.spec.targets}
        failing = {t.name for t in self.spec.targets if self.health.health(t.name) is not Health.HEALTHY}
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
        replicas = sorted(self._replica_faults.pop(incident.target, set())) or None
        ladder, params = self._plans.pop(incident.target, (None, None))
        task = asyncio.get_running_loop().create_task(
            self.healer.heal(incident, replicas, ladder=ladder, params=params), name=f"heal:{incident.id}"
        )
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
        if event.kind == "resolved":
            self.judge.reset(incident.target)  # a repaired target starts a fresh baseline and trend
        for listener in self.listeners:
            listener(incident, event)

    async def _housekeeping(self) -> None:
        while True:
            self.health.check_start_timeouts()
            self._publish_status()
            await self.clock.sleep(_STATUS_EVERY_S)

    def _publish_status(self, *, force: bool = False) -> None:
        for view in self.status():
            key = (view.health.value, view.running, view.desired)
            if force or self._published.get(view.target) != key:
                self._published[view.target] = key
                self.store.set_target_status(
                    TargetStatusRow(view.target, view.health.value, view.running, view.desired, self.clock.now(), "")
                )

    # -- queries and human overrides ---------------------------------------------------
    def status(self) -> list[TargetView]:
        """Every target's health, replicas and open incident."""
        return [
            TargetView(
                t.name,
                self.health.health(t.name),
                len(self.actuator.pids(t.name)),
                self.actuator.desired(t.name),
                self.incidents.open_for(t.name),
            )
            for t in self.spec.targets
        ]

    async def heal(
        self, target: str, kind: ActionKind, *, who: str, params: dict[str, Any] | None = None
    ) -> ExecResult:
        """A manual action, through the same executor and gate."""
        if target not in self._target_names:
            raise NotFoundError(f"no target {target!r}")
        if kind is ActionKind.ESCALATE:
            raise InputError("escalate is not an action a human requests", where="action")
        incident = self.incidents.open_for(target)
        action = new_action(
            kind,
            TargetId(target),
            key=f"manual/{uuid.uuid4().hex}",
            incident_id=incident.id if incident else None,
            params=params,
            reason=f"requested by {who}",
            requested_by=who,
        )
        result = await self.executor.execute(action, incident=incident)
        if result.verified and incident is not None and self.incidents.open_for(target) is incident:
            self.incidents.resolve(incident, healed_by=f"manual {kind} by {who}")
        return result

    async def rollback(self, *, who: str, target: str | None = None, action_id: str | None = None) -> ExecResult:
        """Undo an action (its inverse), or roll a target back to the previous spec version."""
        if (target is None) == (action_id is None):
            raise InputError("name exactly one of target or action_id", where="rollback")
        if action_id is not None:
            rec = self.store.action(action_id)
            undo = inverse_of(rec.action)
            if undo is None:
                raise InputError(f"{rec.action.kind} has no inverse to roll back to", where="action_id")
            undo = replace(undo, requested_by=who, reason=f"rollback of {action_id} requested by {who}")
            return await self.executor.execute(undo, incident=self.incidents.open_for(rec.action.target))
        assert target is not None
        return await self.heal(target, ActionKind.CONFIG_ROLLBACK, who=who, params=self._previous_config(target))

    def _previous_config(self, target: str) -> dict[str, Any]:
        previous = self.store.config_before(self.config_version)
        if previous is None:
            raise InputError("there is no earlier spec version to roll back to", where="target")
        try:
            old = load_spec(previous.body).target(target)
        except KeyError:
            raise InputError(f"{target} does not exist in spec version {previous.version}", where="target") from None
        return {
            "target_spec": old.model_dump(mode="json"),
            "version": previous.version,
            "from_target_spec": self.actuator.spec_of(target).model_dump(mode="json"),
            "from_version": self.config_version,
        }

    def set_autonomous(self, enabled: bool, *, who: str) -> None:
        """The global kill switch (persisted, audited)."""
        self.gate.enabled = enabled
        self.metrics.autonomous.set(int(enabled))
        self.store.put_setting(_KILL_SWITCH_KEY, enabled, now=self.clock.now())
        self.store.audit(
            now=self.clock.now(),
            actor=who,
            verb="autonomous.enable" if enabled else "autonomous.disable",
            subject="fleet",
            result="ok",
        )

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until no healer is running (tests and benchmarks)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while self._healing:
                    await asyncio.wait(list(self._healing.values()))
                return True
        return False
