"""The safety gate's rails live in the store: a new gate over the same store (a restarted controller) keeps them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from novacron.clock import FakeClock
from novacron.healing.catalog import new_action
from novacron.healing.safety import SafetyGate, Verdict, is_automated
from novacron.model import Action, ActionKind, TargetId
from novacron.settings import Policy
from novacron.store import Store
from novacron.store.rails import QUARANTINE, RailRepository


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    db = Store.open(f"sqlite:///{tmp_path / 'n.db'}")
    yield db
    db.close()


def _gate(store: Store, clock: FakeClock, **policy: object) -> SafetyGate:
    return SafetyGate(Policy.model_validate(policy), clock, fleet_size=4, seed=1, rails=RailRepository(store))


def _action(n: int = 0, *, by: str = "controller") -> Action:
    return new_action(ActionKind.RESTART, TargetId("a"), key=f"k{n}", requested_by=by)


def test_quarantine_survives_a_new_gate_and_ends_on_time(store: Store) -> None:
    clock = FakeClock()
    flap = {"threshold": 2, "window_s": 60, "quarantine_s": 100}
    first = _gate(store, clock, flap=flap)
    assert not first.record_incident("a")
    assert first.record_incident("a")
    clock.advance(10)
    again = _gate(store, clock, flap=flap)
    assert again.is_quarantined("a")
    assert again.quarantined_until("a") == pytest.approx(clock.now() + 90)
    assert again.check(_action()).rail == "quarantine"
    assert again.ended_quarantines() == []
    clock.advance(91)
    assert again.ended_quarantines() == ["a"]
    assert RailRepository(store).rows(QUARANTINE) == []
    assert _gate(store, clock, flap=flap).check(_action()).verdict is Verdict.ALLOW


def test_a_flap_count_carries_over_a_restart(store: Store) -> None:
    clock = FakeClock()
    flap = {"threshold": 3, "window_s": 60, "quarantine_s": 100}
    _gate(store, clock, flap=flap).record_incident("a")
    _gate(store, clock, flap=flap).record_incident("a")
    assert _gate(store, clock, flap=flap).record_incident("a")  # third incident, third controller


def test_rate_limit_window_and_backoff_survive_a_new_gate(store: Store) -> None:
    clock = FakeClock()
    policy = {"max_actions_per_target_per_hour": 2, "backoff": {"base_s": 30, "cap_s": 60, "jitter": 0}}
    gate = _gate(store, clock, **policy)
    gate.record_action(_action(1))
    restarted = _gate(store, clock, **policy)
    assert restarted.check(_action(2)).rail == "backoff"
    clock.advance(31)
    restarted.record_action(_action(2))
    clock.advance(61)
    decision = _gate(store, clock, **policy).check(_action(3))
    assert decision.verdict is Verdict.DENY
    assert decision.rail == "rate_limit"
    clock.advance(3600)
    assert _gate(store, clock, **policy).check(_action(4)).verdict is Verdict.ALLOW


def test_a_success_resets_the_stored_backoff(store: Store) -> None:
    clock = FakeClock()
    gate = _gate(store, clock, backoff={"base_s": 30, "cap_s": 60, "jitter": 0})
    gate.record_action(_action(1))
    gate.record_success("a")
    assert _gate(store, clock).check(_action(2)).verdict is Verdict.ALLOW


def test_runbooks_and_agents_are_automation_people_are_not(store: Store) -> None:
    assert is_automated("controller")
    assert is_automated("runbook:restart-web")
    assert is_automated("agent:scaling")
    assert not is_automated("alice")
    gate = _gate(store, FakeClock(), backoff={"base_s": 30, "cap_s": 60, "jitter": 0})
    gate.record_action(_action(1, by="runbook:restart-web"))
    assert gate.check(_action(2, by="runbook:restart-web")).rail == "backoff"
    assert gate.check(_action(3, by="alice")).verdict is Verdict.ALLOW
