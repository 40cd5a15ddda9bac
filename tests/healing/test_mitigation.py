"""Refused actions and mitigations in the healing flow: a refused step is recorded, never applied;
a drain shields users while the ladder repairs, and is undone once the target is healed."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from novacron.clock import MonotonicClock
from novacron.healing.approvals import Approvals
from novacron.healing.flow import HealingFlow
from novacron.healing.safety import SafetyGate
from novacron.model import EMPTY, Action, ActionKind, ActionStatus, IncidentStatus, Observation, TargetId
from novacron.settings import LearningSpec, Policy
from novacron.store import Store
from novacron.telemetry import Metrics
from novacron.testing import FakeActuator


class _Balanced(FakeActuator):
    """A fake whose ``web`` sits behind a load balancer; traffic actions on anything else are refused."""

    def refusal(self, kind: ActionKind, target: str, params: Mapping[str, Any] = EMPTY) -> str | None:
        if kind in (ActionKind.DRAIN, ActionKind.UNDRAIN) and target != "web":
            return f"{target} has no load balancer"
        return None


class _Rig:
    def __init__(self, tmp_path: Path, *, repairs: bool, learning: LearningSpec | None = None) -> None:
        self.clock = MonotonicClock()
        self.store = Store.open(f"sqlite:///{tmp_path / 'flow.db'}")
        self.repairs = repairs
        self.actuator = _Balanced(script=self._script)
        policy = Policy(verify_timeout_s=0.5, ladder=[ActionKind.DRAIN, ActionKind.RESTART, ActionKind.ESCALATE])
        self.flow = HealingFlow(
            graph={"web": [], "solo": []},
            store=self.store,
            actuator=self.actuator,
            gate=SafetyGate(policy, self.clock, fleet_size=2, seed=0),
            approvals=Approvals(),
            metrics=Metrics(),
            clock=self.clock,
            learning=learning,
        )
        for name in ("web", "solo"):
            self.flow.health.configure(name, 0, {"http:0": 1}, start_timeout_s=5)
            self._up(name)

    def _up(self, target: str) -> None:
        self.flow.health.process_started(target, 0)
        self.flow.health.observe(Observation(TargetId(target), "http:0", self.clock.now(), True, replica=0))

    def _script(self, action: Action) -> bool:
        if action.kind is ActionKind.RESTART:
            if self.repairs:
                self._up(action.target)
            return self.repairs
        return True  # a drain or undrain is in force at once

    def steps(self, target: str) -> list[tuple[ActionKind, ActionStatus]]:
        incident = next(i for i in self.store.incidents() if i.target == target)
        return [(a.action.kind, a.status) for a in reversed(self.store.actions(incident_id=incident.id))]

    def timeline(self, target: str) -> list[tuple[str, str]]:
        incident = next(i for i in self.store.incidents() if i.target == target)
        return [(e.kind, e.detail) for e in self.store.timeline(incident.id)]


async def test_a_drain_shields_while_the_ladder_repairs_then_is_undone(tmp_path: Path) -> None:
    rig = _Rig(tmp_path, repairs=True)
    rig.flow.health.process_exited("web", 0, 1, expected=False)
    assert await rig.flow.wait_idle(5.0)
    assert rig.steps("web") == [
        (ActionKind.DRAIN, ActionStatus.VERIFIED),
        (ActionKind.RESTART, ActionStatus.VERIFIED),
        (ActionKind.UNDRAIN, ActionStatus.VERIFIED),
    ]
    undrain = rig.actuator.applied[-1]
    assert undrain.kind is ActionKind.UNDRAIN
    assert undrain.params == {"replicas": [0]}
    assert undrain.inverse_of == rig.actuator.applied[0].id
    incident = next(i for i in rig.store.incidents() if i.target == "web")
    assert incident.status is IncidentStatus.RESOLVED


async def test_a_target_left_unrepaired_stays_drained_for_the_human(tmp_path: Path) -> None:
    rig = _Rig(tmp_path, repairs=False)
    rig.flow.health.process_exited("web", 0, 1, expected=False)
    for _ in range(100):
        if any(i.status is IncidentStatus.NEEDS_HUMAN for i in rig.store.incidents()):
            break
        await asyncio.sleep(0.05)
    assert [k for k, _ in rig.steps("web")] == [ActionKind.DRAIN, ActionKind.RESTART]
    assert ("mitigation_kept", "drain web kept until a human repairs it") in rig.timeline("web")
    assert ActionKind.UNDRAIN not in [a.kind for a in rig.actuator.applied]
    await rig.flow.stop()


async def test_a_refused_step_is_recorded_with_its_reason_never_applied_and_the_ladder_moves_on(
    tmp_path: Path,
) -> None:
    rig = _Rig(tmp_path, repairs=True)
    rig.flow.health.process_exited("solo", 0, 1, expected=False)
    assert await rig.flow.wait_idle(5.0)
    assert rig.steps("solo") == [(ActionKind.DRAIN, ActionStatus.FAILED), (ActionKind.RESTART, ActionStatus.VERIFIED)]
    assert [a.kind for a in rig.actuator.applied] == [ActionKind.RESTART]
    assert ("action_refused", "drain solo refused: solo has no load balancer") in rig.timeline("solo")
    drain = next(a for a in rig.store.actions() if a.action.kind is ActionKind.DRAIN)
    assert drain.detail == "refused: solo has no load balancer"
    audit = {(e.verb, e.subject, e.result) for e in rig.store.audit_log()}
    assert ("action.drain", "solo", "refused") in audit
    assert ("action.drain", "solo", "allow") not in audit  # never gated, never applied


async def test_a_learning_policy_is_never_offered_a_refused_step(tmp_path: Path) -> None:
    learning = LearningSpec(enabled=True, learner="ladder", actions=[ActionKind.DRAIN, ActionKind.RESTART])
    rig = _Rig(tmp_path, repairs=True, learning=learning)
    chooser = rig.flow.chooser
    assert chooser is not None
    assert chooser.allowed([], "web") == ["drain", "restart"]
    assert chooser.allowed([], "solo") == ["restart"]
