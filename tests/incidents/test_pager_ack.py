"""The pager and acknowledgements that come before any policy pages for an incident."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest

from novacron.clock import FakeClock
from novacron.incidents.escalation import parse_policy
from novacron.incidents.paging import Pager
from novacron.model import FaultKind, Incident, IncidentId, IncidentStatus, Priority, TargetId, TimelineEvent
from novacron.notify import SlackChannel
from novacron.store import Store

POLICY = parse_policy({"name": "oncall", "priorities": ["P1"], "levels": [{"notify": ["ops"], "repeat_every_s": 60}]})
P3 = Incident(IncidentId("inc-1"), TargetId("api"), FaultKind.CRASH, IncidentStatus.OPEN, Priority.P3, 0.0, 0.0)


@pytest.fixture
def store() -> Iterator[Store]:
    s = Store.open("sqlite:///:memory:")
    yield s
    s.close()


def _pager(store: Store, clock: FakeClock) -> Pager:
    def record(incident: Incident, kind: str, detail: str, **data: Any) -> None:
        store.add_event(incident.id, TimelineEvent(clock.now(), kind, detail, data))

    channels = [SlackChannel("ops", "http://127.0.0.1:9/unused")]
    return Pager(policies=[POLICY], channels=channels, store=store, clock=clock, record=record)


def _pages(store: Store) -> int:
    return sum(e.kind == "paged" for e in store.timeline(P3.id))


def test_an_incident_acknowledged_before_it_escalates_is_never_paged(store: Store) -> None:
    clock = FakeClock(start=100.0)
    pager = _pager(store, clock)
    store.insert_incident(P3)
    acked = TimelineEvent(clock.now(), "acknowledged", "alice owns it", {"by": "alice"})
    pager.on_event(P3, acked)
    clock.advance(30)
    p1 = dataclasses.replace(P3, priority=Priority.P1)  # re-assessed: now a policy covers it
    pager.on_event(p1, TimelineEvent(clock.now(), "priority", "P3 -> P1", {"priority": "P1"}))
    clock.advance(600)
    pager.tick([p1])
    assert _pages(store) == 0


def test_an_acknowledgement_on_the_timeline_holds_for_a_restarted_controller(store: Store) -> None:
    clock = FakeClock(start=100.0)
    store.insert_incident(P3)
    store.add_event(P3.id, TimelineEvent(clock.now(), "acknowledged", "alice owns it", {"by": "alice"}))
    pager = _pager(store, clock)  # a new controller: nothing in memory
    clock.advance(30)
    p1 = dataclasses.replace(P3, priority=Priority.P1)
    pager.tick([p1])
    pager.on_event(p1, TimelineEvent(clock.now(), "priority", "P3 -> P1", {"priority": "P1"}))
    clock.advance(600)
    pager.tick([p1])
    assert _pages(store) == 0


def test_an_incident_closed_because_its_target_left_the_spec_stops_paging(store: Store) -> None:
    clock = FakeClock(start=100.0)
    pager = _pager(store, clock)
    p1 = dataclasses.replace(P3, priority=Priority.P1, status=IncidentStatus.NEEDS_HUMAN)
    store.insert_incident(p1)
    pager.on_event(p1, TimelineEvent(clock.now(), "escalated", "every step failed", {"priority": "P1"}))
    assert _pages(store) == 1
    closed = dataclasses.replace(p1, status=IncidentStatus.RESOLVED, resolved_at=clock.now())
    pager.on_event(closed, TimelineEvent(clock.now(), "closed", "api was removed from the spec", {}))
    clock.advance(600)  # ten repeats' worth
    pager.tick([])
    assert _pages(store) == 1
    assert [e.kind for e in store.timeline(P3.id)].count("page_resolved") == 1
