"""A step that did not heal and was cleanly undone is a failed step; harm is an undo that failed."""

from __future__ import annotations

from pathlib import Path

import pytest

from novacron.clock import MonotonicClock
from novacron.healing.catalog import CATALOG, new_action
from novacron.healing.executor import ExecResult
from novacron.learning import reward
from novacron.model import ActionKind, ActionStatus, TargetId
from novacron.store import Store
from tests.learning.chooser import CONTEXT, chooser, reallocate_decision

RISK = int(CATALOG[ActionKind.REALLOCATE].risk)  # the step's cost in the reward


def _settle(tmp_path: Path, result: ExecResult) -> tuple[float | None, float]:
    """The reward the step gets, and the policy's estimate for the same step afterwards."""
    clock = MonotonicClock()
    store = Store.open(f"sqlite:///{tmp_path / 'r.db'}")
    try:
        steps = chooser(store, clock)
        value = steps.settle(reallocate_decision(), result, 0.5)
        return value, steps.policy.value(CONTEXT, "reallocate")
    finally:
        store.close()


def test_a_cleanly_undone_step_costs_what_a_failed_step_costs(tmp_path: Path) -> None:
    action = new_action(ActionKind.REALLOCATE, TargetId("svc"), key="k")
    undone = ExecResult(action, ActionStatus.ROLLED_BACK, "not healthy within 4s", rolled_back=True)
    value, _ = _settle(tmp_path, undone)
    assert value == pytest.approx(reward(0.5, healed=False, risk=RISK))
    assert value is not None
    assert value > -20, "not the harm penalty: the fleet is as it was before the step"


def test_a_step_whose_undo_failed_is_harm(tmp_path: Path) -> None:
    action = new_action(ActionKind.REALLOCATE, TargetId("svc"), key="k")
    stuck = ExecResult(action, ActionStatus.FAILED, "not healthy; undo failed", undo_failed=True)
    value, estimate = _settle(tmp_path, stuck)
    assert value == pytest.approx(reward(0.5, healed=False, harmed=True, risk=RISK))
    assert estimate < reward(0.5, healed=False, risk=RISK), "the policy learned the harm"
