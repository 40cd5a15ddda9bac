"""The shared fault flow (fault → incident → diagnosis → healer) and the healer's advisor hook."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from novacron.clock import MonotonicClock
from novacron.errors import StoreError
from novacron.healing.advice import Hindsight
from novacron.healing.approvals import Approvals
from novacron.healing.executor import ExecResult
from novacron.healing.flow import HealingFlow
from novacron.healing.safety import SafetyGate
from novacron.model import (
    Action,
    ActionKind,
    ActionStatus,
    Fault,
    FaultId,
    FaultKind,
    Incident,
    IncidentStatus,
    Observation,
    TargetId,
)
from novacron.settings import Policy
from novacron.store import Store
from novacron.telemetry import Metrics
from novacron.testing import FakeActuator


@dataclass(frozen=True, slots=True)
class _Review:
    veto: bool
    reason: str

    def data(self) -> Mapping[str, Any]:
        return {"veto": self.veto}


@dataclass
class _Advisor:
    """Vetoes the kinds it is told to; remembers what it settled."""

    vetoes: frozenset[ActionKind]
    name: str = "fake-advisor"
    settled: list[tuple[ActionKind, ActionStatus]] = field(default_factory=list)

    def review(self, action: Action, incident: Incident) -> _Review:
        return _Review(action.kind in self.vetoes, f"{action.kind} for {incident.target}")

    def settle(self, review: _Review, result: ExecResult, now: float) -> Hindsight:
        self.settled.append((result.action.kind, result.status))
        return Hindsight(f"{result.action.kind} ended {result.status}", {"status": result.status.value})


class _Rig:
    """A flow over SQLite and a fake actuator whose restarts and replaces heal the target."""

    def __init__(self, tmp_path: Path, advisor: _Advisor | None = None, *, policy: Policy | None = None) -> None:
        self.clock = MonotonicClock()
        self.store = Store.open(f"sqlite:///{tmp_path / 'flow.db'}")
        self.new: list[str] = []
        self.resolved: list[str] = []
        self.actuator = FakeActuator(script=self._heal)
        self.approvals = Approvals(self.store, node_id="n1", poll_s=0.02)
        self.flow = HealingFlow(
            graph={"db": [], "api": ["db"]},
            store=self.store,
            actuator=self.actuator,
            gate=SafetyGate(policy or Policy(verify_timeout_s=1.0), self.clock, fleet_size=2, seed=0),
            approvals=self.approvals,
            metrics=Metrics(),
            clock=self.clock,
            advisor=advisor,
            on_new_incident=lambda inc: self.new.append(inc.target),
            on_resolved=self.resolved.append,
        )
        for name in ("db", "api"):
            self.flow.health.configure(name, 0, {"http:0": 1}, start_timeout_s=5)
            self._up(name)

    def _up(self, target: str) -> None:
        self.flow.health.process_started(target, 0)
        self.flow.health.observe(Observation(TargetId(target), "http:0", self.clock.now(), True, replica=0))

    def _heal(self, action: Action) -> bool:
        self._up(action.target)
        return True

    def timeline(self, target: str) -> list[tuple[str, str]]:
        incident = next(i for i in self.store.incidents() if i.target == target)
        return [(e.kind, e.detail) for e in self.store.timeline(incident.id)]


async def test_a_crash_is_diagnosed_healed_and_resolved(tmp_path: Path) -> None:
    rig = _Rig(tmp_path)
    heard: list[str] = []
    rig.flow.listeners.append(lambda inc, ev: heard.append(ev.kind))
    rig.flow.health.process_exited("api", 0, 1, expected=False)
    assert rig.flow.healing == 1
    assert await rig.flow.wait_idle(5.0)
    kinds = [k for k, _ in rig.timeline("api")]
    assert kinds.index("detected") < kinds.index("diagnosed") < kinds.index("verified") < kinds.index("resolved")
    assert rig.new == ["api"]
    assert rig.resolved == ["api"]
    assert "resolved" in heard
    actions = rig.store.actions()
    assert [(a.action.kind, a.status, a.action.params.get("replicas")) for a in actions] == [
        (ActionKind.RESTART, ActionStatus.VERIFIED, [0])
    ]


async def test_a_fault_outside_the_fleet_is_recorded_for_a_human(tmp_path: Path) -> None:
    rig = _Rig(tmp_path)
    now = rig.clock.now()
    fault = Fault(FaultId("f-1"), TargetId("billing"), FaultKind.ALERT, now, now, {"detail": "alert"})
    incident, new = rig.flow.file_fault(fault)
    again, second = rig.flow.file_fault(fault)
    assert new
    assert not second
    assert again.id == incident.id
    assert incident.status is IncidentStatus.OPEN
    assert rig.flow.healing == 0
    assert rig.new == []


async def test_a_vetoed_step_is_recorded_not_applied_and_the_ladder_moves_on(tmp_path: Path) -> None:
    advisor = _Advisor(vetoes=frozenset({ActionKind.RESTART}))
    rig = _Rig(tmp_path, advisor)
    rig.flow.health.process_exited("db", 0, None, expected=False)
    assert await rig.flow.wait_idle(5.0)
    timeline = rig.timeline("db")
    kinds = [k for k, _ in timeline]
    assert kinds.count("fake_advisor") == 2  # one review per step
    assert kinds.index("fake_advisor_veto") < kinds.index("verified") < kinds.index("fake_advisor_checked")
    veto = next(d for k, d in timeline if k == "fake_advisor_veto")
    assert veto == "vetoed by fake-advisor: restart for db"
    by_kind = {a.action.kind: a for a in rig.store.actions()}
    assert by_kind[ActionKind.RESTART].status is ActionStatus.FAILED
    assert by_kind[ActionKind.RESTART].detail == veto
    assert by_kind[ActionKind.REPLACE].status is ActionStatus.VERIFIED
    assert advisor.settled == [(ActionKind.REPLACE, ActionStatus.VERIFIED)]
    audit = {(e.actor, e.verb, e.result) for e in rig.store.audit_log()}
    assert ("fake-advisor", "action.restart", "vetoed") in audit
    actuator = rig.flow.executor.actuator
    assert isinstance(actuator, FakeActuator)
    assert [a.kind for a in actuator.applied] == [ActionKind.REPLACE]
    assert next(i for i in rig.store.incidents() if i.target == "db").status is IncidentStatus.RESOLVED


async def test_a_ladder_left_mid_way_by_another_controller_is_taken_over(tmp_path: Path) -> None:
    # Another controller opened the incident and started its ladder (MITIGATING), then died or
    # was fenced: the incident is in the store with no healer anywhere.
    rig = _Rig(tmp_path)
    now = rig.clock.now()
    fault = Fault(FaultId("f-1"), TargetId("db"), FaultKind.UNHEALTHY, now, now, {"detail": "HTTP 500"})
    incident, new = rig.flow.incidents.on_fault(fault)
    assert new
    rig.flow.incidents.set_status(incident, IncidentStatus.MITIGATING)
    rig.flow.hand_over("db")
    assert rig.flow.healing == 0

    rig.flow.take_over(["db"])  # this controller got db's lease: the ladder goes on here

    assert rig.flow.healing == 1
    assert await rig.flow.wait_idle(5.0)
    assert rig.flow.incidents.open_for("db") is None  # db answers again: resolved, not left open
    assert rig.resolved == ["db"]


async def test_an_incident_whose_healer_died_is_taken_up_again_by_the_next_fault(tmp_path: Path) -> None:
    rig = _Rig(tmp_path)
    real = rig.flow.healer.heal
    calls: list[str] = []

    async def dies_once(incident: Incident, *args: Any, **kwargs: Any) -> None:
        calls.append(incident.id)
        if len(calls) == 1:  # mid-ladder, the store fails under the healer
            rig.flow.incidents.set_status(incident, IncidentStatus.MITIGATING)
            raise StoreError("store read failed: server closed the connection", delay=0.5)
        await real(incident, *args, **kwargs)

    rig.flow.healer.heal = dies_once  # type: ignore[method-assign]

    def failing_probe() -> None:
        rig.flow.health.observe(Observation(TargetId("api"), "http:0", rig.clock.now(), False, replica=0))

    failing_probe()
    await asyncio.sleep(0.1)
    assert rig.flow.healing == 0
    failing_probe()  # still failing: the next probe is the next fault signal
    assert await rig.flow.wait_idle(5.0)
    assert len(calls) == 2
    assert rig.resolved == ["api"]


async def test_a_healer_defers_to_the_owner_of_its_target_and_ends_with_the_owner_s_outcome(tmp_path: Path) -> None:
    rig = _Rig(tmp_path)
    rig.flow.gate.take_over("db", "failover:h1")  # e.g. db's host failed and its failover moves it
    rig.flow.health.process_exited("db", 0, None, expected=False)
    await asyncio.sleep(0.6)  # the healer's first step is asked, and deferred, a few times
    assert rig.flow.healing == 1
    incident = rig.flow.incidents.open_for("db")
    assert incident is not None
    # The owner could not repair db: it hands the incident to a human, then hands db back.
    rig.flow.incidents.escalate(incident, "failover:h1 could not move db: no other host has room")
    rig.flow.gate.hand_back("db", "failover:h1")
    assert await rig.flow.wait_idle(5.0)
    actuator = rig.flow.executor.actuator
    assert isinstance(actuator, FakeActuator)
    assert actuator.applied == []  # no step ran beside the owner, nor after it
    assert rig.store.actions() == []
    timeline = rig.timeline("db")
    assert ("deferred", "db is repaired by failover:h1; waiting for its outcome") in timeline
    assert next(i for i in rig.store.incidents() if i.target == "db").status is IncidentStatus.NEEDS_HUMAN


async def test_a_step_awaiting_approval_is_withdrawn_when_its_target_recovers(tmp_path: Path) -> None:
    rig = _Rig(tmp_path, policy=Policy(verify_timeout_s=0.3, approval_required=["low"]))
    rig.flow.health.process_exited("api", 0, 1, expected=False)

    def asked() -> bool:
        return bool(rig.approvals.pending())

    while not asked():
        await asyncio.sleep(0.01)
    rig._up("api")  # it came back on its own while a human was being asked
    assert await rig.flow.wait_idle(5.0)
    assert rig.actuator.applied == []
    [action] = rig.store.actions()
    assert action.status is ActionStatus.BLOCKED
    assert action.detail == "controller: api recovered before a decision"
    kinds = [k for k, _ in rig.timeline("api")]
    assert kinds.index("approval_requested") < kinds.index("approval") < kinds.index("resolved")
    assert "escalated" not in kinds
    assert rig.resolved == ["api"]
    await rig.approvals.close()


async def test_a_dependency_still_starting_is_diagnosed_as_starting_not_failing(tmp_path: Path) -> None:
    rig = _Rig(tmp_path)
    rig.flow.health.process_started("db", 0)  # started again: not healthy yet, well within its start timeout
    rig.flow.health.process_exited("api", 0, 1, expected=False)
    diagnosed = [d for k, d in rig.timeline("api") if k == "diagnosed"]
    assert diagnosed == [
        "db is still starting (not yet healthy since its start) "
        "with healthy dependencies and explains 1 failing dependent(s)"
    ]
    await rig.flow.stop()


async def test_a_ladder_gives_its_slot_to_a_failing_upstream_and_goes_on_at_its_next_step(tmp_path: Path) -> None:
    """api's restart fails while db goes down: db takes the only slot, then api's ladder goes on at replace."""
    rig = _Rig(tmp_path, policy=Policy(verify_timeout_s=0.5))
    db_down = asyncio.Event()

    def script(action: Action) -> bool:
        if action.target == "api" and action.kind is ActionKind.RESTART:
            db_down.set()  # db fails while api's restart is in flight: the restart still ends
            return True  # applied, but api stays down: its verification fails
        rig._up(action.target)
        return True

    rig.actuator.script = script
    rig.flow.health.process_exited("api", 0, 1, expected=False)
    await db_down.wait()
    rig.flow.health.process_exited("db", 0, 1, expected=False)
    assert await rig.flow.wait_idle(10.0)
    done = [(a.action.target, a.action.kind, a.status) for a in reversed(rig.store.actions())]
    assert done == [
        ("api", ActionKind.RESTART, ActionStatus.FAILED),
        ("db", ActionKind.RESTART, ActionStatus.VERIFIED),
        ("api", ActionKind.REPLACE, ActionStatus.VERIFIED),
    ]
    api = rig.timeline("api")
    assert ("linked", "db fails upstream of api: the next step on api waits until db is healed") in api
    kinds = [k for k, _ in api]
    assert kinds.index("linked") < kinds.index("reverified")
    assert api[-1] == ("resolved", "healthy again (replace verified)")
    assert not any(i.status is not IncidentStatus.RESOLVED for i in rig.store.incidents())
