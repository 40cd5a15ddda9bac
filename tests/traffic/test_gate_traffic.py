"""Traffic actions at the safety gate: the kill switch holds them, remediation rails do not."""

from __future__ import annotations

from novacron.clock import FakeClock
from novacron.healing.catalog import inverse_of, new_action
from novacron.healing.safety import SafetyGate, Verdict
from novacron.model import ActionKind, TargetId
from novacron.settings import Policy


def _gate() -> SafetyGate:
    return SafetyGate(Policy(max_actions_per_target_per_hour=1), FakeClock(), fleet_size=1, seed=1)


def test_a_circuit_or_canary_step_never_waits_behind_the_healers_backoff() -> None:
    gate = _gate()
    restart = new_action(ActionKind.RESTART, TargetId("web"), key="r1")
    gate.record_action(restart)  # the healer just acted: backoff and the hourly limit are used up
    assert gate.check(new_action(ActionKind.RESTART, TargetId("web"), key="r2")).verdict is not Verdict.ALLOW
    for kind, who in ((ActionKind.OPEN_CIRCUIT, "agent:circuit"), (ActionKind.REROUTE, "experiment:e")):
        action = new_action(kind, TargetId("web"), key=f"t-{kind}", requested_by=who)
        assert gate.check(action).verdict is Verdict.ALLOW
        gate.record_action(action)  # and it does not count against the healer
    gate.enabled = False
    step = new_action(ActionKind.REROUTE, TargetId("web"), key="t3", requested_by="experiment:e")
    assert gate.check(step).verdict is Verdict.DENY


def test_policy_approval_holds_a_promotion() -> None:
    gate = SafetyGate(Policy(approval_required=["high"]), FakeClock(), fleet_size=1)
    promote = new_action(ActionKind.PROMOTE, TargetId("web"), key="p", requested_by="experiment:e")
    assert gate.check(promote).verdict is Verdict.APPROVAL


def test_a_reroute_is_undone_by_the_weights_it_replaced() -> None:
    action = new_action(
        ActionKind.REROUTE, TargetId("web"), key="k", params={"weights": {"v_b": 3}, "from_weights": {"v_b": 0}}
    )
    undo = inverse_of(action)
    assert undo is not None
    assert undo.kind is ActionKind.REROUTE
    assert undo.params["weights"] == {"v_b": 0}
    assert undo.params["from_weights"] == {"v_b": 3}
    drain = new_action(ActionKind.DRAIN, TargetId("web"), key="d", params={"server": "r1"})
    back = inverse_of(drain)
    assert back is not None
    assert back.kind is ActionKind.UNDRAIN
    assert back.params["server"] == "r1"
