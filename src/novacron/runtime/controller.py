"""The controller: wires sensors → health → incidents → healer → executor → actuators on one loop.

It owns start/stop and crash recovery. On start it stores the spec as a config version,
adopts processes a previous controller left running, reloads open incidents and resumes
their ladders (in-flight actions are reconciled, never re-applied), then starts whatever
is missing. The fault flow itself (incidents, diagnosis, quarantine, healers, the
executor and its event consumers) is built by :func:`~novacron.runtime.compose.compose`,
as for the simulated controller; this class wires local processes, probes, heartbeats
and metrics into it.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

from novacron import __version__
from novacron.actuators.base import Actuator, ActuatorRouter
from novacron.actuators.local import LocalActuator
from novacron.actuators.ownership import owns_port, port_holder
from novacron.actuators.process import expand_target_vars, replica_port
from novacron.actuators.remote import RemoteActuator
from novacron.agents.wiring import coordinator_for
from novacron.clock import Clock, MonotonicClock
from novacron.diagnosis.crashlog import classify_crash, read_tail
from novacron.errors import InputError, NotFoundError, StoreError
from novacron.extras import require
from novacron.healing.catalog import inverse_of, new_action
from novacron.healing.executor import ExecResult
from novacron.healing.metricfaults import MetricJudge
from novacron.incidents.paging import build_channels
from novacron.incidents.runbooks import Runbook
from novacron.incidents.runbooks.sources import load_sources
from novacron.model import Action, ActionKind, Fault, Health, Incident, Observation, TargetId, TimelineEvent
from novacron.runtime import adoption, ha
from novacron.runtime.compose import Paging, compose, observe_proving
from novacron.runtime.hostview import FleetHosts
from novacron.runtime.ledger import TargetLedger, fleet_sample, state_word
from novacron.runtime.preflight import check_binaries, held_ports
from novacron.runtime.reload import ReloadPlan, ReloadReport, plan_reload
from novacron.runtime.traffic import haproxy_for, runner_for, with_traffic
from novacron.runtime.traffic_metrics import TrafficCollector
from novacron.runtime.vmfailover import HostWatch
from novacron.sensors.heartbeat import HeartbeatMonitor
from novacron.sensors.metrics import MetricsScraper
from novacron.sensors.probes import ProbeFn, Prober, make_probe
from novacron.settings import (
    ExecCheck,
    FleetSpec,
    HeartbeatCheck,
    HttpCheck,
    TargetSpec,
    TcpCheck,
    load_spec,
    spec_to_yaml,
)
from novacron.store import TargetStatusRow, presence
from novacron.telemetry import Metrics, get_logger

if TYPE_CHECKING:
    from novacron.runtime.dqnonline import DqnOnline
    from novacron.runtime.experiments import ExperimentRunner
    from novacron.runtime.heap import Heap
    from novacron.runtime.twinfleet import SimFleet
    from novacron.twin.sim import Simulator

ProbeCheck = HttpCheck | TcpCheck | ExecCheck

__all__ = ["Controller", "TargetView"]

_KILL_SWITCH_KEY = "autonomous_enabled"
_RELOAD_KEY = "reload_restarting"  # per node: targets a reload is restarting (redone at start if it died)
_HEARTBEAT_PORT_KEY = "heartbeat_udp_port"  # per node: the port guests left running send to
_ALERT_PROBE_S = 1.0  # an alert about a fleet target: its replicas are probed closely this long
# Statuses built between two turns of the loop: a thousand targets' in one piece blocked the
# loop for tens of milliseconds twice a second (most of a large fleet's loop lag).
_PUBLISH_CHUNK = 100
# Actions that start processes: their repair is proven by the started process owning the port.
_STARTS = frozenset(
    {ActionKind.RESTART, ActionKind.REPLACE, ActionKind.START, ActionKind.SCALE_OUT, ActionKind.CONFIG_ROLLBACK}
)


@dataclass(frozen=True, slots=True)
class TargetView:
    """One line of fleet status."""

    target: str
    health: Health
    running: int
    desired: int
    incident: Incident | None
    state: str = ""  # health, or "healing" while an action works on the target
    restarts: int = 0
    last_fault: dict[str, Any] | None = None
    quarantined_until: float | None = None  # wall-clock end of a flap quarantine


class Controller:
    """One fleet, one loop, one executor."""

    dqn_online: DqnOnline | None = None  # a promoted DQN learning from real outcomes (ml extra)
    _publishing: asyncio.Task[None] | None = None  # the status publication under way, if any
    # The process's heap, frozen after start-up and after take-overs (runtime/heap.py): set
    # by `novacron run`, which has the process to itself; tests keep the collector as it is.
    heap: Heap | None = None
    # What `novacron run` changed in the spec it read (--dry-run, --node-id): a reload does the same.
    spec_overrides: Callable[[FleetSpec], FleetSpec]

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
        twin: Simulator | None = None,
    ) -> None:
        """``twin`` is the simulator of the spec's sim targets when a SimClock drives it."""
        self.spec = spec
        self.clock = clock or MonotonicClock()
        self.metrics = metrics or Metrics()
        self.workdir = workdir or Path(spec.controller.workdir)
        # Built first: it checks every detector named in the spec, and a bad one must stop
        # the controller before anything (even the store) is touched.
        self.judge = MetricJudge(spec, self.clock, lambda fault: self.flow.on_fault(fault))  # noqa: PLW0108 - flow comes later
        # The file a reload re-reads: one moved or deleted since is named as missing, not as never there.
        self._spec_source, self._spec_file = spec_source, Path(spec_source) if Path(spec_source).is_file() else None
        paging = Paging(build_channels(spec.notify, os.environ), spec.escalation_policies())  # secrets: env only
        # -- several controllers (runtime/ha.py): this node runs its own process targets,
        # and the remote targets whose shard leases it holds; kind: vm targets run here too
        # (on the QEMU hosts the spec names), their QMP events reported as observations.
        self.node_id = spec.controller.node_id or ha.default_node_id()
        local = ha.local_spec(spec, self.node_id)
        # Sim targets run on this node's twin, so they are local too (but never adopted as processes).
        local_kinds = ("sim", "vm")
        self._local = {t.name for t in local.targets} | {t.name for t in spec.targets if t.kind in local_kinds}
        self._local_spec = local
        check_binaries(spec, source=spec_source, only={t.name for t in local.targets})  # what this node starts
        base = Path(spec_source).parent if Path(spec_source).is_file() else Path.cwd()
        self.runbooks = load_sources(spec.runbooks, base)
        self.actuator = LocalActuator(
            spec,
            processes=local,
            clock=self.clock,
            log_dir=self.workdir / "logs",
            listener=self,
            observe=lambda obs: self._observe(obs),  # noqa: PLW0108 - the prober is built later
            heartbeat_port=lambda: self.heartbeats.port,
        )
        self.remote = RemoteActuator(spec, clock=self.clock, fence_of=self._fence_doc)
        # kind: sim targets run on the spec's twin (see runtime/twinfleet.py).
        self.twin: SimFleet | None = None
        if spec.twin is not None:  # imported only here: the twin brings numpy
            from novacron.runtime.twinfleet import SimFleet  # noqa: PLC0415

            self.twin = SimFleet(spec, self.clock, self, sim=twin)
        actuators: dict[str, Actuator] = {"process": self.actuator, "vm": self.actuator, "remote": self.remote}
        if self.twin is not None:
            actuators["sim"] = self.twin.actuator
        # traffic: HAProxy for targets with a `frontend:` takes the traffic actions; experiments run on it.
        self.traffic = haproxy_for(spec, workdir=self.workdir, clock=self.clock)
        self.experiments: ExperimentRunner | None = None
        parts = compose(
            graph={t.name: t.depends_on for t in spec.targets},
            policy=spec.policy,
            store_url=store_url or spec.controller.store_url,
            # The spec in force, not this one: a reload adds targets (runtime/reload.py).
            actuator=with_traffic(ActuatorRouter(lambda t: self.spec.target(t).kind, actuators), self.traffic),
            clock=self.clock,
            metrics=self.metrics,
            seed=seed,
            on_resolved=self._on_resolved,
            paging=paging,
            prove=self.prove,
            runbooks=self._choose_runbook if len(self.runbooks) else None,
            write_behind=True,  # store faults: healing goes on from memory (runtime/storeguard.py)
            inline_writes=twin is not None,  # simulated time: no writer thread racing the clock
            learning=spec.learning,
            hosts=FleetHosts(spec, self.node_id, self.twin),
            node_id=self.node_id,
            approval_poll_s=spec.controller.ha.renew_s,  # another node's decision arrives within a heartbeat
        )
        self.store, self.gate, self.approvals, self.flow = parts.store, parts.gate, parts.approvals, parts.flow
        self.pager = parts.pager
        self.health = self.flow.health
        self.incidents = self.flow.incidents
        self.executor = self.flow.executor
        self.healer = self.flow.healer
        self.listeners: list[Callable[[Incident, TimelineEvent], None]] = self.flow.listeners
        self.ha = ha.attach(self, version=__version__)
        # VM hosts fail over when their QEMUs all end at once or their node's heartbeat is lost.
        self.hostwatch = HostWatch(self)
        self.prober = Prober(self.clock, self._observe)
        self.heartbeats = HeartbeatMonitor(self.clock, self.health.observe)
        self.scraper = MetricsScraper(self.clock, self._observe_metrics)
        self._published: dict[str, tuple[object, ...]] = {}
        self._log_starts: dict[tuple[str, int], int] = {}
        self.ledger = TargetLedger(t.name for t in spec.targets)  # restarts and last faults, for operators
        self._last_beat = float("-inf")
        self.listeners.append(self.ledger.on_event)
        self.metrics.watch_fleet(
            lambda: fleet_sample(
                self.status(),
                (t.name for t in self.spec.targets if self.gate.is_quarantined(t.name)),
                self.incidents.open_incidents(),
            )
        )
        # A SIGHUP and a `novacron reload` at once: one after the other (under the lock).
        self.config_version, self._reloading, self.spec_overrides = 0, asyncio.Lock(), _as_read
        self._log = get_logger(component="controller")
        self.agents = coordinator_for(self)  # None unless the spec enables `agents:`
        self._note_held_ports()

    def _note_held_ports(self) -> None:
        """Say up front which target ports a stranger holds (the start itself then fails naming it)."""
        ours = {rec.target for rec in self.store.processes() if _alive(rec.pid)}
        for held in held_ports(self._local_spec, ours=ours):
            self._log.warning("target port held by another process", problem=held)

    # -- lifecycle ---------------------------------------------------------------------
    async def start(self) -> None:
        """Recover, start sensors and every missing replica."""
        self.health.on_proven = self._proven  # a warm guest's state is saved once it is proven healthy
        if self.traffic is not None:  # a configuration HAProxy refuses stops us before any target starts
            await self.traffic.check()
        cfg = self.store.save_config(spec_to_yaml(self.spec), source=self._spec_source, now=self.clock.now())
        self.config_version = cfg.version
        self.gate.enabled = bool(self.store.get_setting(_KILL_SWITCH_KEY, True))
        self.metrics.autonomous.set(int(self.gate.enabled))
        self.ledger.load(self.store.target_statuses())
        await self._start_heartbeats()
        self.ha.register()  # a node id another live controller holds stops us here
        for tspec in self.spec.targets:
            for replica in range(tspec.replicas if tspec.name in self._local else 0):
                self._configure_replica(tspec, replica)
        # Several controllers on one host (explicit node ids): each marks, adopts and kills as
        # strays only its own children (runtime/ha.py).
        fleet = adoption.fleet_id(self.store, now=self.clock.now())
        if self.spec.controller.node_id is not None:
            fleet = f"{fleet}:{self.node_id}"
        self.actuator.use_journal(adoption.StoreJournal(self.store), fleet_id=fleet)
        mine = {t.name: t.replicas for t in self.spec.targets if t.name in self._local and t.kind == "process"}
        # A reload that died restarting targets: their replicas may run the old definition.
        # Left out of adoption they are ended as strays and started afresh from the spec read now.
        for name in self._interrupted_reload():
            mine.pop(name, None)
        guests = {t.name: t.replicas for t in self.spec.targets if t.kind == "vm"}
        found = adoption.reconcile(
            self.store, self.actuator.processes, mine, fleet, theirs=self._others_process, guests=guests
        )
        for target, replica, _pid in found.adopted:
            self._adopted(target, replica)
        await self._adopt_guests(found.guests)
        if self.pager is not None:
            self.pager.restore()  # before incidents resume: their pages so far are known
            self.pager.start()
        self.flow.resume(mine=self._local.__contains__)  # remote targets come with their leases
        for target, replica in found.missing:  # died unwatched: a fault for the executor, not a silent respawn
            self.health.process_missing(target, replica, adoption.MISSING_DETAIL)
        # A quarantined target stays as it is: a restarted controller must not restart it.
        quarantined = [t.name for t in self.spec.targets if self.gate.is_quarantined(t.name)]
        await self.actuator.start_all(skip=quarantined, skip_replicas=found.missing)
        if self.twin is not None:
            self.twin.start()
        await self._start_traffic()
        self.flow.start(tick=self._tick)
        self.store.put_setting(self._reload_key, [], now=self.clock.now())
        self._start_online_learning()
        self.ha.start()
        if self.agents is not None:
            self.agents.start()
        if self.heap is not None:
            self.heap.settle()

    def _start_online_learning(self) -> None:
        """learning.online: a promoted DQN keeps learning from the decision log (runtime/dqnonline.py)."""
        chooser, learning = self.flow.chooser, self.spec.learning
        if chooser is None or learning.learner != "dqn" or not learning.online.enabled:
            return
        from novacron.errors import MissingExtraError  # noqa: PLC0415
        from novacron.learning import DqnPolicy  # noqa: PLC0415 - numpy, only with a learning block
        from novacron.runtime.dqnonline import DqnOnline  # noqa: PLC0415

        if not isinstance(chooser.policy, DqnPolicy):
            return  # no trained network: the ladder acts, there is nothing to train
        try:
            require("torch", feature="online learning for the DQN")
        except MissingExtraError as exc:
            self._log.warning("dqn acts as trained", reason=str(exc))
            return

        def is_open(incident_id: str) -> bool:
            return any(i.id == incident_id for i in self.incidents.open_incidents())

        # Simulated time: train on the loop's thread (a worker's real time would pass as simulated).
        inline = self.twin is not None and self.twin.simulated_time
        self.dqn_online = DqnOnline(chooser, learning.online, self.clock, is_open, inline=inline)
        self.dqn_online.start()

    async def _start_traffic(self) -> None:
        """traffic: start HAProxy, then resume or start the experiments."""
        if self.traffic is None:
            return
        await self.traffic.start()
        self.experiments = runner_for(
            self.spec,
            haproxy=self.traffic,
            executor=self.executor,
            store=self.store,
            clock=self.clock,
            workdir=self.workdir,
            config_version=self.config_version,
        )
        await self.experiments.start_all()
        runner, haproxy = self.experiments, self.traffic
        self.metrics.registry.register(TrafficCollector(lambda: haproxy.served, runner.all))

    async def stop(self, *, stop_targets: bool = True) -> None:
        """Stop healing, sensors and (by default) every replica."""
        if self.agents is not None:
            await self.agents.stop()
        if self.experiments is not None:  # traffic: state stays in the store for the next controller
            await self.experiments.close()
        if self.traffic is not None:
            await self.traffic.stop()
        await self.hostwatch.close()
        if self.dqn_online is not None:
            await self.dqn_online.stop()
        await self.flow.stop()
        await self.approvals.close()
        if self._publishing is not None:
            self._publishing.cancel()
        if self.twin is not None:
            await self.twin.stop()
        await self.ha.stop()  # after the healers: nothing acts on a shard once it is handed back
        await self.remote.close()
        if self.pager is not None:
            await self.pager.stop()
        await self.prober.close()
        await self.heartbeats.close()
        await self.scraper.close()
        if stop_targets:
            await self.actuator.stop_all()
        self._publish_status(force=True)
        presence.farewell(self.store, now=self.clock.now())
        self.store.close()

    async def _start_heartbeats(self) -> None:
        """Listen on the configured heartbeat port, else on the last run's, else on any.

        Guests left running by a controller that died send their heartbeats to the port
        their QEMU was started with: the next controller takes it again when it is free.
        """
        port, key = self.spec.controller.heartbeat_udp_port, f"{_HEARTBEAT_PORT_KEY}:{self.node_id}"
        last = self.store.get_setting(key)
        if port == 0 and isinstance(last, int) and 0 < last < 65536:
            try:
                await self.heartbeats.start(port=last)
            except OSError:
                pass  # taken meanwhile: any port (guests left running then miss their beats)
            else:
                return
        got = await self.heartbeats.start(port=port)
        self.store.put_setting(key, got, now=self.clock.now())

    async def _adopt_guests(self, guests: list[tuple[str, int, int]]) -> None:
        """Reattach to the QEMUs a previous controller left running; end those that cannot be."""
        for target, replica, pid in guests:
            if await self.actuator.vms.adopt(target, replica, pid):
                self._log.info("adopted guest", target=target, replica=replica, pid=pid)
                self.ledger.adopted(target, replica)
            else:
                self._log.warning("guest left running could not be adopted; ended", target=target, pid=pid)
                adoption.end_process(pid)
                self.store.remove_process(target, replica)

    def _others_process(self, target: str) -> bool:
        """A process target another node runs (its rows in the store are not this node's)."""
        return target not in self._local and any(t.name == target and t.kind == "process" for t in self.spec.targets)

    def _adopted(self, target: str, replica: int) -> None:
        self.ledger.adopted(target, replica)
        self.health.process_started(target, replica)
        self.prober.expedite(target, replica, self.spec.target(target).start_timeout_s)

    def _configure_replica(self, tspec: TargetSpec, replica: int, *, start_within: float | None = None) -> None:
        if replica in self.health.replicas(tspec.name):
            return
        fill = _filler(tspec, replica)
        thresholds, round_s = self._arm_checks(tspec, replica, fill, start_within=start_within)
        self.health.configure(
            tspec.name,
            replica,
            thresholds,
            tspec.start_timeout_s,
            probe_round_s=round_s,
            min_uptime_s=tspec.min_uptime_s,
        )
        if start_within is not None and self.heap is not None:  # taken over: long-lived from now on
            self.heap.settle_soon()
        if tspec.kind == "sim":
            self.health.process_started(tspec.name, replica)  # the twin's VMs are up when it starts
        if tspec.metrics is not None and tspec.kind == "process":
            self.scraper.add(
                TargetId(tspec.name),
                replica,
                url=fill(tspec.metrics.url) if tspec.metrics.url else None,
                pid_of=lambda: self.actuator.pid_of(tspec.name, replica),
                process=tspec.metrics.process,
                interval_s=tspec.metrics.interval_s,
            )

    def _arm_checks(
        self, tspec: TargetSpec, replica: int, fill: Callable[[str], str], *, start_within: float | None = None
    ) -> tuple[dict[str, int], float]:
        """Register a replica's heartbeat and probes; its failure thresholds by source, and its slowest probe round."""
        thresholds: dict[str, int] = {}
        for i, check in enumerate(tspec.checks):
            if isinstance(check, HeartbeatCheck) and tspec.kind == "sim":
                continue  # the twin's VMs send no heartbeats
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
                self._probe_for(tspec, check, fill),
                interval=check.interval_s,
                timeout=check.timeout_s,
                adaptive=check.adaptive_timeout,
                failures=check.failures,
                start_within=start_within,
            )
        rounds = [c.interval_s + c.timeout_s for c in tspec.checks if not isinstance(c, HeartbeatCheck)]
        return thresholds, max(rounds, default=0.0)

    def _probe_for(self, tspec: TargetSpec, check: ProbeCheck, fill: Callable[[str], str]) -> ProbeFn:
        if tspec.kind == "sim" and self.twin is not None:
            return self.twin.sensor.probe(tspec.name)  # the twin answers with the check's timing
        return make_probe(check, fill)

    # -- sim listener (from the twin) --------------------------------------------------
    def sim_started(self, target: str) -> None:
        """A sim target's VM runs again after an action: verify it quickly."""
        self.health.process_started(target, 0)
        self.prober.expedite(target, 0, self.spec.target(target).start_timeout_s)

    def sim_exited(self, target: str, *, expected: bool) -> None:
        """A sim target's VM stopped: a crash unless an action stopped it."""
        self.health.process_exited(target, 0, None, expected=expected)

    # -- process listener (from the actuator) ------------------------------------------
    def on_started(self, target: str, replica: int, pid: int, port: int | None, create_time: float) -> None:
        """A replica was spawned: remember it, and verify it quickly."""
        self._log_starts[(target, replica)] = _size(self._log_path(target, replica))  # its own lines start here
        self._configure_replica(self.spec.target(target), replica)
        self.ledger.started(target, replica)  # the actuator's journal has stored the pid
        self.health.process_started(target, replica)
        self.heartbeats.reset(target, replica)
        self.prober.expedite(target, replica, self.spec.target(target).start_timeout_s)

    def on_exited(self, target: str, replica: int, pid: int, code: int | None, expected: bool) -> None:
        """A replica exited: a crash unless we stopped it (then classified from its exit and log tail)."""
        if not expected:
            start = self._log_starts.get((target, replica), 0)
            self.flow.note_crash(target, classify_crash(code, read_tail(self._log_path(target, replica), start=start)))
        self.health.process_exited(target, replica, code, expected=expected)
        if not expected and self.agents is not None:  # traffic: a crash is a failed check for the circuit breaker
            crash = Observation(TargetId(target), "process", self.clock.now(), healthy=False, replica=replica)
            self.agents.observe(crash)
        if expected and replica >= self.actuator.desired(target):
            self.store.remove_process(target, replica)
            self.health.remove(target, replica)
            self.heartbeats.unregister(target, replica)
            asyncio.get_running_loop().create_task(self.prober.remove(target, replica))

    def _choose_runbook(self, incident: Incident) -> tuple[Runbook, dict[str, str]] | None:
        if incident.target not in self.flow.graph:
            return None
        labels = dict(self.spec.target(incident.target).labels)
        book = self.runbooks.select(incident, labels)
        return None if book is None else (book, labels)

    async def prove(self, action: Action, replicas: list[int] | None) -> str | None:
        """After a start or restart: is the process the action started alive and serving the target's port?

        None when proven. When another process holds the port, its pid and command are named.
        """
        if action.kind not in _STARTS or all(t.name != action.target for t in self._local_spec.targets):
            return None  # only this node's own processes can be looked at
        tspec = self.actuator.spec_of(action.target)
        indexes = replicas if replicas is not None else range(self.actuator.desired(action.target))
        started = [(i, replica_port(tspec, i), self.actuator.pid_of(action.target, i)) for i in indexes]
        if self.twin is not None and self.twin.simulated_time:
            return _unproven(action.target, started)  # a worker thread's real time would pass as simulated
        # Reading every process's sockets takes tens of milliseconds: off the loop, which would stall every probe.
        return await asyncio.to_thread(_unproven, action.target, started)

    def _log_path(self, target: str, replica: int) -> Path:
        return self.workdir / "logs" / f"{target}-{replica}.log"

    def _proven(self, target: str, replica: int) -> None:
        """A replica proved itself healthy after a start: a warm guest's state is saved then."""
        if target in self.actuator.vms.warm_targets():
            self.actuator.vms.warm.proven(target, replica)

    def on_spawn_failed(self, target: str, replica: int, error: str) -> None:
        """A replica could not be spawned: a start failure, handled like any fault."""
        self.health.spawn_failed(target, replica, error)

    # -- the flow ----------------------------------------------------------------------
    def _observe(self, obs: Observation) -> None:
        """A probe result: health first, then (for watched targets) its latency as a metric."""
        observe_proving(self.health, self.prober, obs)
        self.judge.observe(obs)  # returns at once for targets without a metrics block
        if self.agents is not None:
            self.agents.observe(obs)

    def _observe_metrics(self, obs: Observation) -> None:
        self.judge.observe(obs)
        if self.agents is not None:
            self.agents.observe(obs)

    def file_fault(self, fault: Fault) -> tuple[Incident, bool]:
        """A fault from outside (an Alertmanager alert): recorded, never healed by itself.

        About a fleet target it is evidence: its replicas are probed at once, and the
        controller's own checks decide whether to heal. Returns (incident, new).
        """
        filed = self.flow.file_fault(fault)
        if fault.target in self.flow.graph:
            for replica in self.health.replicas(fault.target):
                self.prober.expedite(fault.target, replica, _ALERT_PROBE_S)
        return filed

    def _on_resolved(self, target: str) -> None:
        self.judge.reset(target)  # a repaired target starts a fresh baseline and trend

    def _tick(self) -> None:
        if self.pager is not None:
            self.pager.tick(self.incidents.open_incidents())  # repeats that fell due
        if self._publishing is None or self._publishing.done():
            self._publishing = asyncio.get_running_loop().create_task(self._publish_in_chunks(), name="status")

    async def _publish_in_chunks(self) -> None:
        """Publish what changed, ``_PUBLISH_CHUNK`` targets at a time, letting the loop run between them."""
        targets = self._visible()
        for start in range(0, len(targets), _PUBLISH_CHUNK):
            if start:
                await asyncio.sleep(0)
            chunk = targets[start : start + _PUBLISH_CHUNK]
            if start:  # a reload between two turns may have removed some
                chunk = [t for t in chunk if t.name in self.flow.graph]
            self._publish(chunk, force=False)
        self._beat_presence()

    def _publish_status(self, *, force: bool = False) -> None:
        self._publish(self._visible(), force=force)
        self._beat_presence()

    def _publish(self, targets: list[TargetSpec], *, force: bool) -> None:
        now = self.clock.now()
        for view in map(self._view, targets):
            at = view.last_fault["at"] if view.last_fault else None
            key = (view.health.value, view.state, view.running, view.desired, view.restarts, at)
            if force or self._published.get(view.target) != key:
                self._published[view.target] = key
                self.store.set_target_status(
                    TargetStatusRow(
                        view.target,
                        view.health.value,
                        view.running,
                        view.desired,
                        now,
                        "",
                        state=view.state,
                        restarts=view.restarts,
                        last_fault=view.last_fault,
                    )
                )

    def _beat_presence(self) -> None:
        now = self.clock.now()
        if now - self._last_beat >= presence.HEARTBEAT_S:  # `novacron status` tells a live controller by it
            self._last_beat = now
            presence.beat(self.store, now=now)

    def _fence_doc(self, action: Any) -> dict[str, Any] | None:
        token = self.ha.token_of(action)
        if token is None:
            return None
        doc: dict[str, Any] = {"node": token.node_id, "shard": token.shard, "epoch": token.epoch}
        if (deadline := self.ha.deadline_of(action)) is not None:
            doc["valid_until"] = deadline  # a request arriving later (a paused sender) is stale
        return doc

    # -- reloading the spec (runtime/reload.py) ------------------------------------------
    @property
    def _reload_key(self) -> str:
        return f"{_RELOAD_KEY}:{self.node_id}"

    def _interrupted_reload(self) -> list[str]:
        """The targets a reload was restarting when the previous controller of this node died."""
        names = self.store.get_setting(self._reload_key, [])
        return [n for n in names if isinstance(n, str)] if isinstance(names, list) else []

    async def reload(self, *, who: str) -> ReloadReport:
        """Re-read the spec file and apply the difference in place; audited as ``who``.

        A spec that does not load, or changes what cannot change in place, raises InputError
        naming the file and field, and nothing is applied.
        """
        async with self._reloading:
            try:
                plan = self._plan_reload()
                # As at start: a process target without host: is refused while other nodes are live.
                await self.ha.check_unbound([t.name for t in plan.added if t.kind == "process" and t.host is None])
            except (InputError, StoreError) as exc:
                self._log.error("spec reload refused; the running spec is unchanged", who=who, error=str(exc))
                self._audit_reload(who, "refused", error=str(exc))
                raise
            if plan.empty:
                report = ReloadReport.of(plan, self.config_version)
            else:
                report = await self._apply_reload(plan, who=who)
            level = "warning" if report.failed else "info"
            getattr(self._log, level)("spec reloaded", who=who, **report.as_dict())
            self._audit_reload(who, "partial" if report.failed else "ok", **report.as_dict())
            return report

    def _plan_reload(self) -> ReloadPlan:
        if self._spec_file is None:
            raise InputError("this controller was not started from a spec file: there is none to re-read", where="spec")
        plan = plan_reload(self.spec, self.spec_overrides(load_spec(self._spec_file)), source=self._spec_source)
        mine = {t.name for t in ha.local_spec(plan.spec, self.node_id).targets}
        starts = {t.name for t in [*plan.added, *plan.changed]} & mine
        check_binaries(plan.spec, source=self._spec_source, only=starts)
        return plan

    def _audit_reload(self, who: str, result: str, **detail: Any) -> None:
        now = self.clock.now()
        self.store.audit(now=now, actor=who, verb="spec.reload", subject=self._spec_source, result=result, **detail)

    async def _apply_reload(self, plan: ReloadPlan, *, who: str) -> ReloadReport:
        """Stop the removed targets, take the new spec, restart the changed and start the added."""
        local = ha.local_spec(plan.spec, self.node_id)
        mine = {t.name for t in local.targets}
        now = self.clock.now()
        version = self.store.save_config(spec_to_yaml(plan.spec), source=self._spec_source, now=now).version
        # The intent, durable before anything is touched: a controller that dies mid-way restarts these at start.
        self.store.put_setting(self._reload_key, [t.name for t in plan.changed if t.name in mine], now=now)
        await adoption.StoreJournal(self.store).settle()
        for tspec in plan.removed:
            await self._stop_removed(tspec.name, who=who)
        self._take_spec(plan, local, version)
        jobs = [self.heal(t.name, ActionKind.START, who=who) for t in plan.added if t.name in mine]
        jobs += [self._restart_changed(t, who=who) for t in plan.changed if t.name in mine]
        for tspec in plan.rechecked:
            if tspec.name in mine:
                await self._recheck(tspec)
        results = await asyncio.gather(*jobs)
        self.store.put_setting(self._reload_key, [], now=self.clock.now())
        self._publish_status(force=True)
        return ReloadReport.of(plan, version, failed={r.action.target: r.detail for r in results if not r.verified})

    def _take_spec(self, plan: ReloadPlan, local: FleetSpec, version: int) -> None:
        """The new spec in force, in one step on the loop: no status or API call sees half of it."""
        self.spec, self._local_spec, self.config_version = plan.spec, local, version
        self._local = {t.name for t in local.targets} | {t.name for t in plan.spec.targets if t.kind in ("sim", "vm")}
        self.gate.policy, self.gate.fleet_size = plan.spec.policy, len(plan.spec.targets)
        for tspec in plan.removed:
            self.flow.graph.pop(tspec.name, None)
            self.store.remove_target_status(tspec.name)
            self._published.pop(tspec.name, None)
            self.actuator.remove_target(tspec.name)
            self.ledger.remove(tspec.name)
            self.gate.forget(tspec.name)
        self.flow.graph.update({t.name: t.depends_on for t in plan.spec.targets})
        self.ha.unbound = [t.name for t in plan.spec.targets if t.kind == "process" and t.host is None]
        self.ledger.add(t.name for t in plan.added)
        for tspec in plan.added:
            if tspec.name in self._local:
                self.actuator.set_target_spec(tspec)
                for replica in range(tspec.replicas):
                    self._configure_replica(tspec, replica)

    async def _stop_removed(self, name: str, *, who: str) -> None:
        """Close its incident and stop its replicas (through the executor) and their checks."""
        incident = self.incidents.open_for(name)
        self.flow.hand_over(name)  # no healer works on it any more
        if incident is not None:
            self.incidents.withdraw(incident, f"{name} was removed from the spec (reload by {who}); closed unhealed")
        if name not in self._local:
            return
        await self.heal(name, ActionKind.STOP, who=who)
        for replica in list(self.health.replicas(name)):
            await self._unwatch(name, replica)

    async def _park(self, tspec: TargetSpec, *, who: str) -> ExecResult:
        """``replicas: 0``: stop every replica (a scale-in keeps one) and watch none; the target stays in the spec."""
        name = tspec.name
        result = await self.heal(name, ActionKind.STOP, who=who)
        self.actuator.remove_target(name)  # its stopped replicas and their journal rows
        self.actuator.set_target_spec(tspec, resize=True)
        for replica in list(self.health.replicas(name)):
            await self._unwatch(name, replica)
        return result

    async def _unwatch(self, name: str, replica: int, *, forget: bool = True) -> None:
        """Stop a replica's heartbeats and probes; ``forget`` drops what its health tracker knows too."""
        self.heartbeats.unregister(name, replica)
        await self.prober.remove(name, replica)
        if forget:
            self.health.remove(name, replica)

    async def _recheck(self, tspec: TargetSpec) -> None:
        """Only how it is watched changed: new probes and thresholds, the replicas run on untouched."""
        name = tspec.name
        self.actuator.set_target_spec(tspec)
        for replica in list(self.health.replicas(name)):
            await self._unwatch(name, replica, forget=False)  # what it proved so far stands
            thresholds, round_s = self._arm_checks(tspec, replica, _filler(tspec, replica))
            self.health.reconfigure(
                name,
                replica,
                thresholds,
                tspec.start_timeout_s,
                probe_round_s=round_s,
                min_uptime_s=tspec.min_uptime_s,
            )

    async def _restart_changed(self, tspec: TargetSpec, *, who: str) -> ExecResult:
        """Run the new definition: fewer replicas scaled in, then a restart (stopped, started, verified)."""
        name, before = tspec.name, self.actuator.desired(tspec.name)
        if tspec.replicas == 0:
            return await self._park(tspec, who=who)
        if 0 < tspec.replicas < before:
            await self.heal(name, ActionKind.SCALE_IN, who=who, params={"count": before - tspec.replicas})
        self.actuator.set_target_spec(tspec, resize=True)
        for replica in [r for r in self.health.replicas(name) if r < tspec.replicas]:  # its checks anew
            await self._unwatch(name, replica)
        for replica in range(tspec.replicas):
            self._configure_replica(tspec, replica)
        return await self.heal(name, ActionKind.RESTART, who=who)

    # -- queries and human overrides ---------------------------------------------------
    def status(self) -> list[TargetView]:
        """Every target's health, replicas, open incident, restarts and last fault."""
        return [self._view(t) for t in self._visible()]

    def _visible(self) -> list[TargetSpec]:
        """The targets this controller runs or owns (another node's remote targets are not its to show)."""
        owned = set(self.ha.owned())
        return [t for t in self.spec.targets if t.name in self._local or t.name in owned]

    def _view(self, t: TargetSpec) -> TargetView:
        health, incident = self.health.health(t.name), self.incidents.open_for(t.name)
        local = t.name in self._local
        until = self.gate.quarantined_until(t.name)
        sim = t.kind == "sim" and self.twin is not None
        return TargetView(
            t.name,
            health,
            self.twin.running(t.name)
            if sim and self.twin
            else (len(self.actuator.pids(t.name)) if local else int(health is Health.HEALTHY)),
            t.replicas if sim else (self.actuator.desired(t.name) if local else 1),
            incident,
            state=state_word(
                health, incident, remediating=t.name in self.gate.remediating, quarantined=until is not None
            ),
            restarts=self.ledger.restarts(t.name),
            last_fault=self.ledger.last_fault(t.name),
            quarantined_until=until,
        )

    async def heal(
        self, target: str, kind: ActionKind, *, who: str, params: dict[str, Any] | None = None
    ) -> ExecResult:
        """A manual action, through the same executor and gate."""
        if target not in self.flow.graph:
            raise NotFoundError(f"no target {target!r}")
        if kind is ActionKind.ESCALATE:
            raise InputError("escalate is not an action a human requests", where="action")
        if kind is ActionKind.CONFIG_ROLLBACK and "target_spec" not in (params or {}):
            # A config rollback asked for by name goes to the previous spec version, as a rollback does.
            params = {**(params or {}), **self._previous_config(target)}
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
        with self.flow.manual_action(target):
            result = await self.executor.execute(action, incident=incident)
        if result.verified and incident is not None and self.incidents.open_for(target) is incident:
            self.incidents.resolve(incident, healed_by=f"manual {kind} by {who}")
        else:
            self.flow.settle_after_manual(target)
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

    def unquarantine(self, target: str, *, who: str) -> bool:
        """Lift a target's flap quarantine (audited); False when it was not quarantined.

        As when a quarantine runs out, a target still down is healed now: automation acts on it again.
        """
        if target not in self.flow.graph:
            raise NotFoundError(f"no target {target!r}")
        lifted = self.gate.lift_quarantine(target)
        if lifted:
            self.flow.quarantine_ended(target, how=f"lifted by {who}")
        self.store.audit(
            now=self.clock.now(),
            actor=who,
            verb="target.unquarantine",
            subject=target,
            result="ok" if lifted else "not_quarantined",
        )
        return lifted

    def set_autonomous(self, enabled: bool, *, who: str) -> None:
        """The global kill switch (persisted, audited).

        Enabled, a target still down whose incident the switch alone handed to a human is healed now.
        """
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
        if enabled:
            self.flow.autonomy_enabled(how=f"enabled by {who}")

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until no healer is running (tests and benchmarks)."""
        return await self.flow.wait_idle(timeout)


def _as_read(spec: FleetSpec) -> FleetSpec:
    return spec


def _unproven(target: str, started: list[tuple[int, int | None, int | None]]) -> str | None:
    """Why the started (replica, port, pid)s do not serve ``target``; None when each is alive on its port."""
    for replica, port, pid in started:
        if pid is None:
            holder = port_holder(port) if port is not None else None
            held = f"; port {port} is held by {holder}" if holder else ""
            return f"cannot start {target} replica {replica}: its process exited{held}"
        if port is not None and not owns_port(pid, port) and (holder := port_holder(port)) is not None:
            return (
                f"cannot start {target} replica {replica}: port {port} is held by {holder}, "
                f"not by the started process (pid {pid})"
            )
    return None


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _filler(tspec: TargetSpec, replica: int) -> Callable[[str], str]:
    """Fills a replica's ``{name}``, ``{replica}`` and ``{port}`` into a check's or metrics' text."""
    port = replica_port(tspec, replica)

    def fill(s: str) -> str:
        return expand_target_vars(s, name=tspec.name, replica=replica, port=port)

    return fill
