"""The executor: gate → idempotency key → apply → verify → roll back, on a fake actuator."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from novacron.clock import MonotonicClock
from novacron.healing.approvals import Approvals
from novacron.healing.catalog import new_action
from novacron.healing.events import ActionEvent, ActionPhase
from novacron.healing.executor import Executor
from novacron.healing.health import HealthTracker
from novacron.healing.recorders import standard_bus
from novacron.healing.safety import SafetyGate
from novacron.incidents.lifecycle import IncidentManager
from novacron.model import Action, ActionKind, ActionStatus, Observation, TargetId
from novacron.settings import Policy
from novacron.store import Store
from novacron.telemetry import Metrics
from novacron.testing import FakeActuator


class Rig:
    """An executor over a real SQLite store, a fake actuator and a driven health tracker."""

    def __init__(self, tmp_path: Path, *, heals: bool = True, **policy: object) -> None:
        self.clock = MonotonicClock()
        self.store = Store.open(f"sqlite:///{tmp_path / 'x.db'}")
        self.health = HealthTracker(self.clock, on_fault=lambda f: None, on_recovered=lambda t: None)
        self.health.configure("a", 0, {"http:0": 1}, start_timeout_s=5)
        self.health.process_started("a", 0)
        self.heals = heals
        self.actuator = FakeActuator(script=self._script)
        policy.setdefault("verify_timeout_s", 0.3)
        self.gate = SafetyGate(Policy.model_validate(policy), self.clock, fleet_size=2, seed=0)
        self.approvals = Approvals()
        self.events: list[ActionEvent] = []
        incidents = IncidentManager(self.store, self.clock, Metrics())
        bus = standard_bus(incidents=incidents, store=self.store, clock=self.clock, metrics=Metrics(), gate=self.gate)
        bus.subscribe(self.events.append)
        self.executor = Executor(
            store=self.store,
            actuator=self.actuator,
            gate=self.gate,
            health=self.health,
            approvals=self.approvals,
            events=bus,
            clock=self.clock,
        )

    def _script(self, action: Action) -> bool:
        if self.heals:
            self.health.observe(Observation(TargetId("a"), "http:0", self.clock.now(), True))
        return True

    def action(self, kind: ActionKind = ActionKind.RESTART, key: str = "k1", by: str = "controller") -> Action:
        return new_action(kind, TargetId("a"), key=key, requested_by=by)


@pytest.fixture
def rig(tmp_path: Path) -> Callable[..., Rig]:
    return lambda **kw: Rig(tmp_path, **kw)


async def test_verified_action_is_recorded_and_audited(rig: Callable[..., Rig]) -> None:
    r = rig()
    result = await r.executor.execute(r.action())
    assert result.verified
    assert [a.kind for a in r.actuator.applied] == [ActionKind.RESTART]
    stored = r.store.action(result.action.id)
    assert stored.status is ActionStatus.VERIFIED
    assert stored.started_at is not None
    assert stored.finished_at is not None
    verbs = {(e.verb, e.result) for e in r.store.audit_log()}
    assert ("action.restart", "allow") in verbs
    assert ("action.restart", "verified") in verbs
    phases = [e.phase for e in r.events]
    assert phases == [
        ActionPhase.PLANNED,
        ActionPhase.GATED,
        ActionPhase.APPLYING,
        ActionPhase.APPLIED,
        ActionPhase.VERIFIED,
    ], "one typed event per transition, in order"
    assert r.events[-1].healthy


async def test_an_idempotency_key_is_applied_once(rig: Callable[..., Rig]) -> None:
    r = rig()
    first = await r.executor.execute(r.action(key="same"))
    second = await r.executor.execute(r.action(key="same"))
    assert first.verified
    assert second.replayed
    assert second.status is ActionStatus.VERIFIED
    assert len(r.actuator.applied) == 1


async def test_unverified_scale_out_is_rolled_back(rig: Callable[..., Rig]) -> None:
    r = rig(heals=False)
    r.health.observe(Observation(TargetId("a"), "http:0", 0.0, False, detail="HTTP 503"))
    result = await r.executor.execute(r.action(ActionKind.SCALE_OUT))
    assert result.status is ActionStatus.ROLLED_BACK
    assert not result.undo_failed, "cleanly undone: the step failed, the fleet is as it was"
    assert [a.kind for a in r.actuator.applied] == [ActionKind.SCALE_OUT, ActionKind.SCALE_IN]
    assert r.actuator.applied[1].inverse_of == result.action.id


async def test_an_undo_that_fails_leaves_the_change_and_says_so(rig: Callable[..., Rig]) -> None:
    r = rig(heals=False)
    r.actuator.script = lambda action: action.kind is not ActionKind.SCALE_IN
    result = await r.executor.execute(r.action(ActionKind.SCALE_OUT))
    assert result.status is ActionStatus.FAILED
    assert result.undo_failed, "the scale-out stays in place: a learning policy's reward counts that as harm"
    assert [a.kind for a in r.actuator.applied] == [ActionKind.SCALE_OUT, ActionKind.SCALE_IN]


async def test_a_failed_restart_has_nothing_to_roll_back(rig: Callable[..., Rig]) -> None:
    r = rig(heals=False)
    result = await r.executor.execute(r.action())
    assert result.status is ActionStatus.FAILED
    assert "not healthy within" in result.detail
    assert not result.undo_failed
    assert len(r.actuator.applied) == 1


async def test_dry_run_records_and_touches_nothing(rig: Callable[..., Rig]) -> None:
    r = rig(dry_run=True)
    result = await r.executor.execute(r.action())
    assert result.status is ActionStatus.DRY_RUN
    assert r.actuator.applied == []
    assert r.store.action(result.action.id).status is ActionStatus.DRY_RUN


async def test_a_denied_action_is_recorded_as_blocked(rig: Callable[..., Rig]) -> None:
    r = rig()
    r.gate.enabled = False
    result = await r.executor.execute(r.action())
    assert result.status is ActionStatus.BLOCKED
    assert "kill switch" in r.store.action(result.action.id).detail
    assert r.actuator.applied == []


@pytest.mark.parametrize("approve", [True, False])
async def test_risky_action_waits_for_a_human(rig: Callable[..., Rig], approve: bool) -> None:
    r = rig(approval_required=["low"])
    task = asyncio.create_task(r.executor.execute(r.action()))
    while not r.approvals.pending():
        await asyncio.sleep(0.01)
    assert r.actuator.applied == []
    pending = r.approvals.pending()[0]
    assert r.store.action(pending.id).status is ActionStatus.AWAITING_APPROVAL
    r.approvals.decide(pending.id, approve=approve, who="alice")
    result = await task
    assert (result.status is ActionStatus.VERIFIED) is approve
    assert len(r.actuator.applied) == int(approve)
    assert any(e.actor == "alice" for e in r.store.audit_log())


async def test_an_action_in_flight_at_a_crash_is_reconciled_not_repeated(rig: Callable[..., Rig]) -> None:
    r = rig()
    action = r.action(key="inc-1/0/restart")
    r.store.claim_action(action, ActionStatus.APPLYING, now=r.clock.now())
    r.health.observe(Observation(TargetId("a"), "http:0", r.clock.now(), True))
    result = await r.executor.execute(r.action(key="inc-1/0/restart"))
    assert result.replayed
    assert result.status is ActionStatus.VERIFIED
    assert "reconciled" in r.store.action(action.id).detail
    assert r.actuator.applied == []


async def test_verification_waits_for_a_couple_of_the_targets_probe_rounds(rig: Callable[..., Rig]) -> None:
    # The policy allows 0.3 s, but the target's probes come every 0.3 s and may take 0.2 s:
    # a repair that shows healthy at the next round but one is verified, not failed.
    r = rig(heals=False)
    r.health.configure("a", 0, {"http:0": 1}, start_timeout_s=5, probe_round_s=0.5)
    r.health.process_started("a", 0)
    healthy = Observation(TargetId("a"), "http:0", r.clock.now(), True)
    asyncio.get_running_loop().call_later(0.6, r.health.observe, healthy)
    result = await r.executor.execute(r.action())
    assert result.verified, result.detail
