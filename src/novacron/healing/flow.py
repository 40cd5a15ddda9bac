"""The fault flow every controller runs: fault → incident → diagnosis → healer → resolution.

:class:`HealingFlow` owns the part of a controller that does not depend on what the
targets are: the :class:`~novacron.healing.health.HealthTracker` and its callbacks, the
:class:`~novacron.incidents.lifecycle.IncidentManager`, root-cause diagnosis over the
dependency graph, flap quarantine, remedy plans carried by predicted faults, one healer
task per target (spawned, tracked, resumed after a restart), and resolution when a target
recovers on its own. What differs between the process controller and the twin's is passed
in: the target names and their dependencies, the actuator, the clock, an optional advisor,
and hooks for a new incident and a resolved one. Sensors, actuator wiring, start/stop of
targets and status publishing stay with the controller that owns them.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from novacron.actuators.base import Actuator, refusal_of
from novacron.clock import Clock
from novacron.diagnosis.crashlog import CrashReport
from novacron.diagnosis.rootcause import Cause, CrashHint, rank_root_causes, upstreams
from novacron.healing.advice import Advisor
from novacron.healing.approvals import Approvals
from novacron.healing.executor import Executor, Prover
from novacron.healing.healer import Healer, RunbookChooser
from novacron.healing.health import HealthTracker
from novacron.healing.recorders import standard_bus
from novacron.healing.safety import SafetyGate
from novacron.incidents.impact import PriorityKeeper
from novacron.incidents.lifecycle import IncidentManager
from novacron.model import (
    ENDING_EVENTS,
    ActionKind,
    Fault,
    FaultKind,
    Health,
    Incident,
    IncidentStatus,
    Priority,
    TargetId,
    TimelineEvent,
)
from novacron.settings import LearningSpec
from novacron.store import Store
from novacron.telemetry import Metrics, get_logger

if TYPE_CHECKING:
    from novacron.healing.hosts import HostView
    from novacron.healing.learned import LearnedSteps

__all__ = ["HOUSEKEEPING_S", "HealingFlow", "RemedyPlan", "remedy_plan"]

HOUSEKEEPING_S = 0.5
_UPSTREAM_POLL_S = 0.1
# An upstream healed this recently still explains a dependent whose probes only now
# noticed (slow probes on a busy machine): the dependent is re-verified, not restarted.
_RECENT_S = 10.0

RemedyPlan = tuple[list[ActionKind], dict[str, Any]]


def _rerun(resumed: int) -> str:
    """The ladder run the ``resumed``-th enable of the kill switch started on an incident."""
    return f"resumed-{resumed}"


def _healable(incident: Incident, graph: Mapping[str, Sequence[str]]) -> bool:
    """Whether a resumed incident gets a healer: a fleet target's, and not an alert's alone.

    An alert's incident that a ladder already worked on (mitigating, or handed to a human)
    is resumed: the controller's own checks had found the target failing.
    """
    if incident.target not in graph:
        return False
    return incident.kind is not FaultKind.ALERT or incident.status is not IncidentStatus.OPEN


def remedy_plan(fault: Fault) -> RemedyPlan:
    """The ladder a predicted fault asks for: its remedy first, then the usual fallbacks."""
    remedy = ActionKind(fault.evidence["remedy"])
    ladder = [remedy, ActionKind.REPLACE] if remedy is ActionKind.RESTART else [remedy]
    return [*ladder, ActionKind.ESCALATE], dict(fault.evidence.get("remedy_params") or {})


_RESUMABLE = frozenset({IncidentStatus.OPEN, IncidentStatus.MITIGATING})  # a ladder may work on it


class HealingFlow:
    """Faults in, healed (or escalated) incidents out, through the one executor."""

    def __init__(
        self,
        *,
        graph: Mapping[str, Sequence[str]],
        store: Store,
        actuator: Actuator,
        gate: SafetyGate,
        approvals: Approvals,
        metrics: Metrics,
        clock: Clock,
        advisor: Advisor[Any] | None = None,
        on_new_incident: Callable[[Incident], None] | None = None,
        on_resolved: Callable[[str], None] | None = None,
        component: str = "controller",
        prove: Prover | None = None,
        runbooks: RunbookChooser | None = None,
        learning: LearningSpec | None = None,
        hosts: HostView | None = None,
    ) -> None:
        """``graph`` maps every fleet target to the targets it depends on.

        ``on_new_incident`` hears a fleet incident as it opens (before diagnosis);
        ``on_resolved`` hears the target of every resolved incident (e.g. to forget its
        metric baselines). An enabled ``learning`` block has a policy choose each step;
        ``hosts`` gives it the host evidence of its contexts.
        """
        self.graph = dict(graph)
        self.store = store
        self.clock = clock
        self.gate = gate
        self.health = HealthTracker(clock, on_fault=self.on_fault, on_recovered=self._on_recovered)
        self.incidents = IncidentManager(store, clock, metrics, on_change=self._on_incident_change)
        self.events = standard_bus(incidents=self.incidents, store=store, clock=clock, metrics=metrics, gate=gate)
        self.executor = Executor(
            store=store,
            actuator=actuator,
            gate=gate,
            health=self.health,
            approvals=approvals,
            events=self.events,
            clock=clock,
            prove=prove,
        )
        # The spec's learning block: a policy picks each step (healing/learned.py); off keeps the ladder.
        self.chooser: LearnedSteps | None = None
        if learning is not None and learning.enabled:  # imported only here: learning brings numpy
            from novacron.healing.learned import LearnedSteps  # noqa: PLC0415

            self.chooser = LearnedSteps(
                learning,
                store=store,
                gate=gate,
                health=self.health,
                graph=self.graph,
                clock=clock,
                refusal=lambda kind, target: refusal_of(actuator, kind, target),
                hosts=hosts,
            )
        self.healer = Healer(
            self.executor,
            self.incidents,
            clock,
            advisor=advisor,
            chooser=self.chooser,
            runbooks=runbooks,
            upstreams=self,
        )
        self.priorities = PriorityKeeper(self.incidents, self.graph)
        # First: every later listener (the pager above all) sees the re-assessed priority.
        self.listeners: list[Callable[[Incident, TimelineEvent], None]] = [self.priorities.on_event]
        self._on_new_incident = on_new_incident
        self._on_resolved = on_resolved
        self._plans: dict[str, RemedyPlan] = {}
        self._replica_faults: dict[str, set[int]] = {}
        self._healing: dict[str, asyncio.Task[None]] = {}
        self._crashed: set[str] = set()  # targets whose healer died with an error
        self._manual: dict[str, int] = {}  # targets a human's action works on: its outcome settles the incident
        self._deferred: set[str] = set()  # targets whose healer waits for the human's action to end
        self._tasks: list[asyncio.Task[None]] = []
        self._crashes: dict[str, CrashReport] = {}
        self._recently_resolved: dict[str, Incident] = {}
        self._own_crash: set[str] = set()  # incidents whose crash is their target's own: no upstream explains them
        self._log = get_logger(component=component)

    # -- lifecycle ---------------------------------------------------------------------
    def resume(self, *, mine: Callable[[str], bool] | None = None) -> None:
        """Reload open incidents from the store and resume their ladders (controller start).

        ``mine``: with several controllers, only the incidents of targets this one owns now
        are resumed; the others are taken over with their lease (:meth:`take_over`).
        """
        for incident in self.incidents.load_open():
            if mine is not None and incident.target in self.graph and not mine(incident.target):
                # Another controller's target; an alert's about a target outside the fleet
                # stays tracked here, so its resolution still finds it after a restart.
                self.incidents.forget(incident.target)
                continue
            if self.gate.is_quarantined(incident.target):
                continue  # healed (or resolved) when its quarantine ends, not before
            if not _healable(incident, self.graph):
                continue  # an alert's incident: tracked until the alert resolves, never healed by it
            resumed = self._held_by_kill_switch(incident) if self.gate.enabled else None
            if resumed:  # the run an enable started goes on at its step, not at the blocked first run's
                self._spawn_healer(incident, rerun=_rerun(resumed))
                continue
            self._log.info("resuming incident", incident=incident.id, target=incident.target)
            root = self._rank(incident)[0].target
            if root != incident.target and self._upstream_failing(root):
                self._spawn(incident, self._await_upstream(incident, root))
            else:
                self._spawn_healer(incident)

    # -- several controllers: a target's lease moves between them ----------------------
    def take_over(self, targets: Sequence[str]) -> None:
        """This controller now owns ``targets``: carry on their open incidents (one store read for all)."""
        for incident in self.incidents.refresh(targets):
            # MITIGATING too: the ladder of a controller that died or was fenced mid-way goes on
            # here (a step it already claimed is replayed or reconciled, never applied twice).
            if incident.status in _RESUMABLE:
                self._log.info("taking over incident", incident=incident.id, target=incident.target)
                self._spawn_healer(incident)

    def hand_over(self, target: str) -> None:
        """Another controller owns ``target`` now: stop healing it here; its incident stays open for them."""
        task = self._healing.pop(target, None)
        if task is not None:
            task.cancel()
        self.incidents.forget(target)

    def start(self, *, tick: Callable[[], None] | None = None) -> None:
        """Start housekeeping: start timeouts, then ``tick`` (e.g. status publishing), twice a second."""
        task = asyncio.get_running_loop().create_task(self._housekeeping(tick), name="housekeeping")
        self._tasks.append(task)

    async def stop(self) -> None:
        """Cancel housekeeping and every running healer, and wait for them to end."""
        for task in [*self._tasks, *self._healing.values()]:
            task.cancel()
        await asyncio.gather(*self._tasks, *self._healing.values(), return_exceptions=True)
        self._tasks.clear()
        self._healing.clear()
        if self.chooser is not None:
            self.chooser.save(source="stop")

    @property
    def healing(self) -> int:
        """Incidents with a healer running now."""
        return len(self._healing)

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until no healer is running (tests and benchmarks)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while self._healing:
                    await asyncio.wait(list(self._healing.values()))
                return True
        return False

    # -- faults ------------------------------------------------------------------------
    def file_fault(self, fault: Fault) -> tuple[Incident, bool]:
        """A fault from outside (an Alertmanager alert): the same path as the flow's own.

        An alert opens (or joins) the target's incident but never starts the ladder: about
        anything outside the fleet it is tracked for a human until it resolves; about a fleet
        target it is evidence, and the controller's own checks decide (a fault of theirs
        folds into the incident and heals it). Returns (incident, new).
        """
        if fault.target not in self.graph or fault.kind is FaultKind.ALERT:
            # Evidence, not a verdict: an alert never starts the ladder. About a fleet target
            # the controller's own checks decide; a fault of theirs joins this incident.
            return self.incidents.on_fault(fault)
        return self.on_fault(fault)

    def on_fault(self, fault: Fault) -> tuple[Incident, bool]:
        """File a fleet fault: fold it into the open incident, or open, diagnose and heal one."""
        if "replica" in fault.evidence:
            self._replica_faults.setdefault(fault.target, set()).add(int(fault.evidence["replica"]))
        if "remedy" in fault.evidence:
            self._plans[fault.target] = remedy_plan(fault)
        crash = self._crashes.pop(fault.target, None)
        incident, new = self.incidents.on_fault(fault)
        if not new:
            self._crash_event(incident, crash)
            idle = fault.target not in self._healing and not self.gate.is_quarantined(fault.target)
            # MITIGATING with no healer: the ladder's healer died (a store error mid-step); go on.
            crashed = incident.status is IncidentStatus.MITIGATING and fault.target in self._crashed
            if idle and (incident.status is IncidentStatus.OPEN or crashed):
                self._crashed.discard(fault.target)
                self._spawn_healer(incident)
            return incident, False
        if self._on_new_incident is not None:
            self._on_new_incident(incident)
        root = self._diagnose(incident, crash)
        self._crash_event(incident, crash)
        return self._quarantine_or_heal(incident, root), True

    def _crash_event(self, incident: Incident, crash: CrashReport | None) -> None:
        if crash is not None:
            self.incidents.event(incident, "crash_classified", f"{crash.crash_class}: {crash.detail}", **crash.data())

    def note_crash(self, target: str, report: CrashReport) -> None:
        """What a crashed process's exit and log say; used by the fault it is about to raise."""
        self._crashes[target] = report

    def _quarantine_or_heal(self, incident: Incident, root: str) -> Incident:
        flap = self.gate.policy.flap
        if self.gate.record_incident(incident.target):
            reason = f"flapping: {flap.threshold} incidents within {flap.window_s:g}s; quarantined"
            return self.incidents.escalate(incident, reason, priority=Priority.P1)
        if self.gate.is_quarantined(incident.target):
            return self.incidents.escalate(incident, "target is quarantined for flapping", priority=Priority.P1)
        if root != incident.target:
            self._spawn(incident, self._await_upstream(incident, root))
        else:
            self._spawn_healer(incident)
        return incident

    def _rank(self, incident: Incident, crash: CrashReport | None = None) -> list[Cause]:
        """Root-cause candidates for ``incident`` from the graph, time order and its crash."""
        failing = {name for name in self.graph if self.health.health(name) is not Health.HEALTHY}
        first_failed: dict[str, float] = {
            i.target: i.since for i in self.incidents.open_incidents() if not i.preventive
        }
        failing |= set(first_failed)
        failing.add(incident.target)
        first_failed.setdefault(incident.target, incident.since)
        hint: CrashHint = "none" if crash is None else ("local" if crash.local else "none")
        if hint == "local":
            self._own_crash.add(incident.id)
        if crash is not None and crash.crash_class == "dependency_refused":
            hint = "dependency"
        # Not healthy only because still within its start timeout: said so, not called failing.
        starting = {name for name in failing - set(first_failed) if self.health.health(name) is Health.STARTING}
        return rank_root_causes(
            incident.target, self.graph, failing, first_failed=first_failed, crash=hint, starting=starting
        )

    def _diagnose(self, incident: Incident, crash: CrashReport | None) -> str:
        """Write the diagnosis on the timeline; the root cause's target (the incident's own when local)."""
        if incident.preventive:
            self.incidents.event(incident, "diagnosed", "preventive: a forecast, not a failure; acting ahead of it")
            return incident.target
        causes = self._rank(incident, crash)
        best = causes[0]
        self.incidents.event(
            incident,
            "diagnosed",
            best.reason,
            root_cause=best.target,
            candidates=[{"target": c.target, "score": round(c.score, 2)} for c in causes[:5]],
        )
        return best.target

    def _upstream_failing(self, root: str) -> bool:
        return not self.health.is_healthy(root) or self.incidents.open_for(root) is not None

    def _fails(self, name: str) -> bool:
        """Whether ``name`` is found failing: down, or with an open incident a ladder works on."""
        incident = self.incidents.open_for(name)
        if incident is not None and not incident.preventive and _healable(incident, self.graph):
            return True
        return self.health.health(name) in (Health.UNHEALTHY, Health.STOPPED)

    def failing_upstream(self, incident: Incident) -> str | None:
        """The failing upstream a target under repair waits for: the deepest one, else None.

        A failing upstream explains its dependent better than a local diagnosis made before
        it was noticed, so the dependent's ladder waits for it (:class:`~novacron.healing.healer.Upstreams`).
        A crash classified as the target's own keeps it its own root cause.
        """
        if incident.preventive or incident.id in self._own_crash:
            return None
        failing = {name for name in upstreams(incident.target, self.graph) if self._fails(name)}
        roots = sorted(name for name in failing if not upstreams(name, self.graph) & failing)
        return roots[0] if roots else None

    async def wait_for_upstream(self, incident: Incident, upstream: str) -> bool:
        """A ladder's next step waits while ``upstream`` is healed; True when the target is still down after it."""
        target = incident.target
        return await self._wait_for(
            incident,
            upstream,
            f"{upstream} fails upstream of {target}: the next step on {target} waits until {upstream} is healed",
            healed=f"{upstream} recovered; {target} re-verified healthy, no further action",
        )

    async def _await_upstream(self, incident: Incident, root: str) -> None:
        """A dependent's ladder waits while its root cause is healed, then re-verifies it first."""
        target = incident.target
        if await self._wait_for(
            incident,
            root,
            f"{root} is the root cause; no action on {target} while {root} is healed",
            healed=f"{root} recovered; {target} re-verified healthy, no action taken",
        ):
            replicas = sorted(self._replica_faults.pop(target, set())) or None
            await self.healer.heal(incident, replicas)

    async def _wait_for(self, incident: Incident, root: str, why: str, *, healed: str) -> bool:
        """Link ``incident`` to ``root``'s, wait while ``root`` fails, then re-verify the target.

        Resolved (``healed``) when the target is healthy again; True when it is still down.
        """
        target = incident.target
        root_incident = self.incidents.open_for(root) or self._recently_resolved.get(root)
        self.incidents.event(
            incident,
            "linked",
            why,
            root_cause=root,
            root_incident=root_incident.id if root_incident else None,
        )
        if root_incident is not None:
            self.incidents.event(
                root_incident,
                "linked",
                f"{target} fails because of {root}",
                dependent=target,
                dependent_incident=incident.id,
            )
        while self._upstream_failing(root):
            if self._recovered(incident):
                return False
            await self.clock.sleep(_UPSTREAM_POLL_S)
        ok, why = await self.health.wait_healthy(
            target, None, self.health.verify_window(target, self.gate.policy.verify_timeout_s)
        )
        if self._recovered(incident):
            return False
        if ok:
            self.incidents.resolve(incident, healed_by=healed)
            return False
        self.incidents.event(incident, "reverified", f"{root} recovered but {target} is still down ({why}); healing it")
        return True

    def _recovered(self, incident: Incident) -> bool:
        current = self.incidents.open_for(incident.target)
        return current is None or current.id != incident.id

    # -- healers -----------------------------------------------------------------------
    def _spawn_healer(self, incident: Incident, *, rerun: str | None = None) -> None:
        if incident.target in self._healing:
            return
        if incident.target in self._manual:
            # A human's start or restart is still verifying: a healer acting now would have its
            # work undone by that action's rollback. The action's outcome comes first.
            self._deferred.add(incident.target)
            return
        replicas = sorted(self._replica_faults.pop(incident.target, set())) or None
        ladder, params = self._plans.pop(incident.target, (None, None))
        self._spawn(incident, self.healer.heal(incident, replicas, ladder=ladder, params=params, rerun=rerun))

    def _spawn(self, incident: Incident, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` as the one task that handles ``incident``'s target now."""
        if incident.target in self._healing:
            work.close()
            return
        task = asyncio.get_running_loop().create_task(work, name=f"heal:{incident.id}")
        self._healing[incident.target] = task
        task.add_done_callback(lambda t: self._healer_done(incident.target, t))

    def _healer_done(self, target: str, task: asyncio.Task[None]) -> None:
        if self._healing.get(target) is task:
            del self._healing[target]
        if not task.cancelled() and task.exception() is not None:
            self._crashed.add(target)  # its incident is picked up again by the target's next fault
            self.health.rearm(target)  # which the next failing probe raises: it was raised only once
            self._log.error("healer failed", target=target, error=repr(task.exception()))

    @contextlib.contextmanager
    def manual_action(self, target: str) -> Iterator[None]:
        """A human's action works on ``target`` for the block: a recovery meanwhile is its result to claim."""
        self._manual[target] = self._manual.get(target, 0) + 1
        try:
            yield
        finally:
            self._manual[target] -= 1
            if not self._manual[target]:
                del self._manual[target]

    def settle_after_manual(self, target: str) -> None:
        """A human's action ended without verifying: a target healthy anyway recovered on its own.

        Otherwise a healer held back while the action ran takes the target's incident up now.
        """
        if target in self._manual:
            return
        deferred = target in self._deferred
        self._deferred.discard(target)
        incident = self.incidents.open_for(target)
        if self.health.is_healthy(target):
            self._on_recovered(TargetId(target))
        elif deferred and incident is not None and incident.status is IncidentStatus.OPEN:
            self._spawn_healer(incident)

    def _on_recovered(self, target: TargetId) -> None:
        incident = self.incidents.open_for(target)
        if incident is not None and target not in self._healing and target not in self._manual:
            self.incidents.resolve(incident, healed_by="recovered without further action")

    def _on_incident_change(self, incident: Incident, event: TimelineEvent) -> None:
        if event.kind in ENDING_EVENTS:  # resolved, or closed because its target left the spec
            self._own_crash.discard(incident.id)
        if event.kind == "resolved":
            if not incident.preventive:
                self._recently_resolved[incident.target] = incident
            if self._on_resolved is not None:
                self._on_resolved(incident.target)
        for listener in self.listeners:
            listener(incident, event)

    def quarantine_ended(self, target: str, *, how: str = "ended") -> None:
        """A quarantine ran out (or a human lifted it, ``how``): re-check the target and heal it if still down."""
        incident = self.incidents.open_for(target)
        if incident is not None:
            self._recheck(incident, "quarantine_ended", f"its quarantine {how}", f"quarantine of {target} {how}")

    def autonomy_enabled(self, *, how: str = "enabled") -> None:
        """The kill switch was turned back on (``how``): re-check and heal what it alone handed to a human.

        Only incidents whose latest escalation the kill switch made; a quarantined target
        waits for its quarantine's end, and an approval asked for or a ladder that failed
        stays with its human.
        """
        for incident in self.incidents.open_incidents():
            resumed = self._held_by_kill_switch(incident)
            if resumed is None or incident.target in self._healing or self.gate.is_quarantined(incident.target):
                continue
            self._recheck(
                incident,
                "autonomy_resumed",
                f"autonomous healing was {how}",
                f"autonomous healing {how}",
                rerun=_rerun(resumed + 1),
            )

    def _recheck(self, incident: Incident, kind: str, healthy_when: str, why: str, *, rerun: str | None = None) -> None:
        """Automation may act on ``incident``'s target again: resolve it if healthy, else heal it now."""
        if self.health.is_healthy(incident.target):
            self.incidents.resolve(incident, healed_by=f"healthy when {healthy_when}")
            return
        self.incidents.event(incident, kind, f"{why}; still down, healing")
        self._spawn_healer(incident, rerun=rerun)

    def _held_by_kill_switch(self, incident: Incident) -> int | None:
        """How often an enable resumed ``incident``, if the kill switch alone handed it to a human; else None.

        Held: its latest escalation is the kill switch's, or repeats one that was (a ladder
        resumed at a controller's start replays the blocked step and escalates again).
        """
        if incident.status is not IncidentStatus.NEEDS_HUMAN or incident.target not in self.graph:
            return None
        timeline = self.store.timeline(incident.id)
        escalations = [e for e in timeline if e.kind == "escalated"]
        if not escalations:
            return None
        latest = escalations[-1].detail
        same = itertools.takewhile(lambda e: e.detail == latest, reversed(escalations))
        if not any(e.data.get("rail") == "kill_switch" for e in same):
            return None
        return sum(e.kind == "autonomy_resumed" for e in timeline)

    async def _housekeeping(self, tick: Callable[[], None] | None) -> None:
        while True:
            self.health.check_start_timeouts()
            for target in self.gate.ended_quarantines():
                self.quarantine_ended(target)
            if tick is not None:
                tick()
            await self.clock.sleep(HOUSEKEEPING_S)
