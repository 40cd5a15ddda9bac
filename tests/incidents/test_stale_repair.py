"""A repair still running after its incident was resolved or handed over writes nothing back."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from novacron.clock import FakeClock
from novacron.incidents.lifecycle import IncidentManager
from novacron.model import Fault, FaultId, FaultKind, IncidentStatus, Priority, TargetId
from novacron.store import Store
from novacron.telemetry import Metrics


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(f"sqlite:///{tmp_path / 'n.db'}")
    yield s
    s.close()


def _fault(n: int) -> Fault:
    return Fault(FaultId(f"f-{n}"), TargetId("api"), FaultKind.CRASH, 100.0 + n, 100.0 + n)


def test_a_late_escalation_of_a_resolved_incident_changes_nothing(store: Store) -> None:
    mgr = IncidentManager(store, FakeClock(), Metrics())
    incident, _ = mgr.on_fault(_fault(0))
    mgr.resolve(incident, healed_by="recovered")
    assert mgr.escalate(incident, "every step failed") == incident
    mgr.raise_priority(incident, Priority.P0, "late")
    assert mgr.open_for("api") is None, "not reopened in memory"
    assert store.incident(incident.id).status is IncidentStatus.RESOLVED
    assert [e.kind for e in store.timeline(incident.id)] == ["detected", "resolved"]
    fresh, new = mgr.on_fault(_fault(1))
    assert new, "the next fault is a new incident, not folded into the resolved one"
    assert fresh.id != incident.id


def test_a_handed_over_incident_is_left_to_its_new_owner(store: Store) -> None:
    old, new = IncidentManager(store, FakeClock(), Metrics()), IncidentManager(store, FakeClock(), Metrics())
    incident, _ = old.on_fault(_fault(0))
    old.forget("api")  # the target's lease moved
    [taken] = new.refresh(["api"])
    new.set_status(taken, IncidentStatus.MITIGATING)
    old.escalate(incident, "the old owner's ladder ran out")  # still running there
    assert store.incident(incident.id).status is IncidentStatus.MITIGATING
    assert old.open_for("api") is None
