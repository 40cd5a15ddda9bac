"""The safety gate's rails, on a fake clock."""

from __future__ import annotations

import pytest

from novacron.clock import FakeClock
from novacron.healing.catalog import new_action
from novacron.healing.safety import SafetyGate, Verdict
from novacron.model import Action, ActionKind, TargetId
from novacron.settings import BackoffPolicy, FlapPolicy, Policy


def _gate(clock: FakeClock, *, fleet_size: int = 4, **policy: object) -> SafetyGate:
    return SafetyGate(Policy.model_validate(policy), clock, fleet_size=fleet_size, seed=1)


def _restart(target: str = "a", *, by: str = "controller", kind: ActionKind = ActionKind.RESTART) -> Action:
    return new_action(kind, TargetId(target), key=f"k-{target}-{kind}", requested_by=by)


def test_allows_by_default() -> None:
    assert _gate(FakeClock()).check(_restart()).verdict is Verdict.ALLOW


def test_kill_switch_denies_automation_but_not_a_human() -> None:
    gate = _gate(FakeClock())
    gate.enabled = False
    decision = gate.check(_restart())
    assert decision.verdict is Verdict.DENY
    assert decision.rail == "kill_switch"
    assert gate.check(_restart(by="alice")).verdict is Verdict.ALLOW


def test_dry_run_applies_to_everyone() -> None:
    gate = _gate(FakeClock(), dry_run=True)
    assert gate.check(_restart()).verdict is Verdict.DRY_RUN
    assert gate.check(_restart(by="alice")).verdict is Verdict.DRY_RUN


def test_rate_limit_slides_with_the_hour() -> None:
    clock = FakeClock()
    gate = _gate(clock, max_actions_per_target_per_hour=2, backoff={"base_s": 0, "cap_s": 1})
    for _ in range(2):
        action = _restart()
        assert gate.check(action).verdict is Verdict.ALLOW
        gate.record_action(action)
    assert gate.check(_restart()).rail == "rate_limit"
    assert gate.check(_restart("b")).verdict is Verdict.ALLOW
    clock.advance(3601)
    assert gate.check(_restart()).verdict is Verdict.ALLOW


def test_backoff_grows_exponentially_is_capped_jittered_and_resets() -> None:
    clock = FakeClock()
    gate = SafetyGate(Policy(backoff=BackoffPolicy(base_s=1.0, cap_s=4.0, jitter=0.25)), clock, fleet_size=1, seed=3)
    delays = [gate.backoff_delay(n) for n in range(5)]
    for n, delay in enumerate(delays):
        nominal = min(4.0, 2.0**n)
        assert 0.75 * nominal <= delay <= nominal
    action = _restart()
    gate.record_action(action)
    decision = gate.check(_restart())
    assert decision.verdict is Verdict.DEFER
    assert decision.rail == "backoff"
    assert decision.retry_at is not None
    clock.advance(decision.retry_at - clock.monotonic())
    assert gate.check(_restart()).verdict is Verdict.ALLOW
    gate.record_action(action)
    gate.record_success("a")
    assert gate.check(_restart()).verdict is Verdict.ALLOW


def test_flapping_target_is_quarantined_until_it_expires() -> None:
    clock = FakeClock()
    gate = _gate(clock, flap=FlapPolicy(window_s=60, threshold=3, quarantine_s=100))
    assert not gate.record_incident("a")
    clock.advance(10)
    assert not gate.record_incident("a")
    clock.advance(10)
    assert gate.record_incident("a")
    assert gate.check(_restart()).rail == "quarantine"
    assert gate.check(_restart(by="alice")).verdict is Verdict.ALLOW
    clock.advance(101)
    assert gate.check(_restart()).verdict is Verdict.ALLOW


def test_incidents_outside_the_flap_window_do_not_count() -> None:
    clock = FakeClock()
    gate = _gate(clock, flap=FlapPolicy(window_s=60, threshold=2))
    assert not gate.record_incident("a")
    clock.advance(61)
    assert not gate.record_incident("a")


@pytest.mark.parametrize(("share", "size", "cap"), [(0.5, 4, 2), (0.25, 4, 1), (0.1, 4, 1), (1.0, 7, 7), (0.3, 10, 3)])
def test_blast_cap_is_a_share_of_the_fleet_and_at_least_one(share: float, size: int, cap: int) -> None:
    assert _gate(FakeClock(), fleet_size=size, blast_radius=share).blast_cap == cap


def test_blast_radius_defers_beyond_the_cap() -> None:
    gate = _gate(FakeClock(), fleet_size=4, blast_radius=0.5)
    assert gate.acquire("a")
    assert gate.acquire("b")
    assert not gate.acquire("c")
    assert gate.check(_restart("c")).verdict is Verdict.DEFER
    assert gate.check(_restart("a")).verdict is Verdict.ALLOW  # already holds a slot
    gate.release("a")
    assert gate.acquire("c")


def test_risky_actions_wait_for_approval() -> None:
    gate = _gate(FakeClock(), approval_required=["high", "critical"])
    rollback = _restart(kind=ActionKind.CONFIG_ROLLBACK)
    assert gate.check(rollback).verdict is Verdict.APPROVAL
    assert gate.check(_restart()).verdict is Verdict.ALLOW


def test_a_target_taken_over_defers_everyone_else_s_automation_until_handed_back() -> None:
    clock = FakeClock()
    gate = _gate(clock, backoff={"base_s": 30, "cap_s": 60})
    gate.record_action(_restart())  # the healer's restart failed: the target backs off 30 s
    gate.take_over("a", "failover:h1")
    deferred = gate.check(_restart())
    assert deferred.verdict is Verdict.DEFER
    assert deferred.rail == "owner"
    assert "failover:h1" in deferred.reason
    # The owner's remedy is not one of the target's repeated repairs: no backoff for it.
    assert gate.check(_restart(by="failover:h1", kind=ActionKind.VM_MIGRATE)).verdict is Verdict.ALLOW
    assert gate.check(_restart(by="alice")).verdict is Verdict.ALLOW  # a human's action is the human's call
    assert gate.check(_restart("b")).verdict is Verdict.ALLOW
    gate.hand_back("a", "failover:h2")  # only the owner hands back
    assert gate.owner_of("a") == "failover:h1"
    gate.hand_back("a", "failover:h1")
    assert gate.owner_of("a") is None
    assert gate.check(_restart()).rail == "backoff"
