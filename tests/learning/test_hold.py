"""A verified step is learned once it has held; a fault on its target sooner is a repair that did not hold."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from novacron.clock import FakeClock
from novacron.healing.catalog import new_action
from novacron.healing.executor import ExecResult
from novacron.healing.learned import LearnedSteps
from novacron.model import (
    ActionKind,
    ActionStatus,
    FaultKind,
    Incident,
    IncidentId,
    IncidentStatus,
    Priority,
    TargetId,
)
from novacron.store import Store
from tests.learning.chooser import CONTEXT, chooser, reallocate_decision

HOLD_S = 60.0
Then = Callable[[LearnedSteps, FakeClock], None]


def _after_a_verified_reallocate(tmp_path: Path, then: Then) -> tuple[float, float]:
    """The policy's estimate of reallocate before the step, and after ``then`` ran."""
    clock = FakeClock()
    store = Store.open(f"sqlite:///{tmp_path / 'h.db'}")
    try:
        steps = chooser(store, clock, hold_s=HOLD_S)
        before = steps.policy.value(CONTEXT, "reallocate")
        decision = reallocate_decision()
        action = new_action(ActionKind.REALLOCATE, TargetId("svc"), key="k")
        assert steps.settle(decision, ExecResult(action, ActionStatus.VERIFIED, "healthy again"), 0.5) is None
        assert steps.policy.value(CONTEXT, "reallocate") == before, "nothing learned before it held"
        then(steps, clock)
        return before, steps.policy.value(CONTEXT, "reallocate")
    finally:
        store.close()


def _new_incident(chooser: LearnedSteps) -> None:
    hang = (FaultKind.HANG, IncidentStatus.OPEN, Priority.P3)
    incident = Incident(IncidentId("inc-2"), TargetId("svc"), *hang, opened_at=0.0, since=0.0)
    chooser.choose(incident, [])


def _held(chooser: LearnedSteps, clock: FakeClock) -> None:
    clock.advance(HOLD_S + 1)
    _new_incident(chooser)


def _relapsed(chooser: LearnedSteps, clock: FakeClock) -> None:
    clock.advance(1.0)
    _new_incident(chooser)


def _struck_from_outside(chooser: LearnedSteps, clock: FakeClock) -> None:
    clock.advance(1.0)
    chooser.end_holds()
    _new_incident(chooser)


def test_a_repair_that_held_is_learned_as_healed_and_one_that_relapsed_as_failed(tmp_path: Path) -> None:
    before, held = _after_a_verified_reallocate(tmp_path / "held", _held)
    _, relapsed = _after_a_verified_reallocate(tmp_path / "relapsed", _relapsed)
    assert held != before, "learned once the hold passed"
    assert relapsed != before, "learned when the target fell over again"
    assert held > relapsed + 5, "a relapse costs what a failed step costs"


def test_a_fault_struck_from_outside_ends_the_hold_as_held(tmp_path: Path) -> None:
    _, held = _after_a_verified_reallocate(tmp_path / "held", _held)
    _, struck = _after_a_verified_reallocate(tmp_path / "struck", _struck_from_outside)
    assert struck == held
