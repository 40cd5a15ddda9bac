"""Priority from impact in the flow: assessed at open, re-assessed as the fleet and the repair change."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from novacron.clock import FakeClock
from novacron.incidents.impact import PriorityKeeper
from novacron.incidents.lifecycle import IncidentManager
from novacron.model import Fault, FaultId, FaultKind, Incident, Priority, TargetId
from novacron.store import Store
from novacron.telemetry import Metrics

GRAPH = {"db": [], "auth": ["db"], "api": ["auth"], "web": ["api"], "cache": [], "mail": [], "jobs": [], "logs": []}


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[IncidentManager]:
    store = Store.open(f"sqlite:///{tmp_path / 'n.db'}")
    clock = FakeClock()
    keeper: list[PriorityKeeper] = []
    mgr = IncidentManager(store, clock, Metrics(), on_change=lambda i, e: keeper[0].on_event(i, e))  # noqa: PLW0108 - keeper comes next
    keeper.append(PriorityKeeper(mgr, GRAPH))
    yield mgr
    store.close()


def _fault(target: str, n: int = 0) -> Fault:
    return Fault(FaultId(f"f-{target}-{n}"), TargetId(target), FaultKind.CRASH, 1_700_000_000.0, 1_700_000_000.0)


def _open(mgr: IncidentManager, target: str) -> Incident:
    """The open incident of ``target``; the test fails if there is none."""
    inc = mgr.open_for(target)
    assert inc is not None, f"no open incident for {target}"
    return inc


def _priorities(mgr: IncidentManager, store_target: str) -> list[str]:
    inc = _open(mgr, store_target)
    return [e.data["priority"] for e in mgr._store.timeline(inc.id) if e.kind == "priority"]


def test_a_leaf_alone_is_p3_and_the_share_raises_everyone(manager: IncidentManager) -> None:
    leaf, _ = manager.on_fault(_fault("cache"))
    assert _open(manager, "cache").priority is Priority.P3
    for name in ("mail", "jobs", "logs"):
        manager.on_fault(_fault(name))
    # Half the fleet down: every open incident is re-assessed upwards, each change on its timeline.
    assert _open(manager, "cache").priority is Priority.P2
    assert _priorities(manager, "cache") == ["P3", "P2"]
    manager.resolve(_open(manager, "mail"), healed_by="test")
    assert _open(manager, "cache").priority is Priority.P3
    assert leaf.id == _open(manager, "cache").id


def test_a_failed_repair_raises_and_needs_human_is_never_below_p1(manager: IncidentManager) -> None:
    inc, _ = manager.on_fault(_fault("db"))
    assert _open(manager, "db").priority is Priority.P3  # three dependents, 1/8 down
    manager.event(inc, "verification_failed", "restart: not healthy")
    assert _open(manager, "db").priority is Priority.P1
    manager.escalate(_open(manager, "db"), "ladder exhausted", priority=Priority.P1)
    manager.on_fault(_fault("cache"))  # re-assessment of everyone must not lower the human's incident
    assert _open(manager, "db").priority <= Priority.P1


def test_a_rail_that_raised_p0_is_not_lowered(manager: IncidentManager, tmp_path: Path) -> None:
    inc, _ = manager.on_fault(_fault("cache"))
    before = _open(manager, "cache").priority
    manager.raise_priority(inc, Priority.P0, "blast radius: 1 targets under remediation, cap 1; waiting")
    manager.on_fault(_fault("mail"))
    assert _open(manager, "cache").priority is Priority.P0
    reader = Store.open(f"sqlite:///{tmp_path / 'n.db'}", create=False)
    [line] = [e for e in reader.timeline(inc.id) if e.data.get("priority") == "P0"]
    reader.close()
    assert line.detail == f"P{int(before)} → P0: blast radius: 1 targets under remediation, cap 1; waiting"
