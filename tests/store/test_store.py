"""The store on real SQLite and real PostgreSQL: schema, idempotency keys, config versions."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from novacron.errors import ConfigError, NotFoundError, StoreConstraintError, StoreError
from novacron.healing.catalog import new_action
from novacron.model import (
    ActionKind,
    ActionStatus,
    FaultKind,
    Incident,
    IncidentId,
    IncidentStatus,
    Priority,
    TargetId,
    TimelineEvent,
)
from novacron.store import Store
from novacron.store.studies import StudyStore, TrialRow
from novacron.store.tables import metadata
from tests.postgres import pg_url  # noqa: F401 - a fixture


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    url = f"sqlite:///{tmp_path / 'n.db'}" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    s = Store.open(url)
    yield s
    s.close()


def _incident(target: str = "api") -> Incident:
    return Incident(
        id=IncidentId(f"inc-{uuid.uuid4().hex[:8]}"),
        target=TargetId(target),
        kind=FaultKind.CRASH,
        status=IncidentStatus.OPEN,
        priority=Priority.P2,
        opened_at=100.0,
        since=99.9,
    )


def test_migrated_schema_matches_the_tables(store: Store) -> None:
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_an_idempotency_key_can_be_claimed_once(store: Store) -> None:
    first = new_action(ActionKind.RESTART, TargetId("api"), key="inc-1/0/restart")
    again = new_action(ActionKind.RESTART, TargetId("api"), key="inc-1/0/restart")
    assert store.claim_action(first, ActionStatus.PLANNED, now=1.0) is None
    existing = store.claim_action(again, ActionStatus.PLANNED, now=2.0)
    assert existing is not None
    assert existing.action.id == first.id
    assert store.count_actions() == 1


def test_action_status_and_inflight(store: Store) -> None:
    action = new_action(ActionKind.REPLACE, TargetId("api"), key="k", params={"replicas": [0]})
    store.claim_action(action, ActionStatus.PLANNED, now=1.0)
    store.set_action_status(action.id, ActionStatus.APPLYING, started_at=2.0)
    assert [r.action.id for r in store.inflight_actions()] == [action.id]
    store.set_action_status(action.id, ActionStatus.VERIFIED, finished_at=3.0, detail="healthy again")
    rec = store.action(action.id)
    assert (rec.status, rec.started_at, rec.finished_at, rec.detail) == (
        ActionStatus.VERIFIED,
        2.0,
        3.0,
        "healthy again",
    )
    assert rec.action.params == {"replicas": [0]}
    assert store.inflight_actions() == []


def test_incidents_and_timelines_round_trip(store: Store) -> None:
    inc = _incident()
    store.insert_incident(inc)
    store.add_event(inc.id, TimelineEvent(101.0, "detected", "crash", {"mttd_ms": 1.5}))
    assert store.incident(inc.id) == inc
    assert store.open_incidents() == [inc]
    assert store.timeline(inc.id)[0].data == {"mttd_ms": 1.5}
    with pytest.raises(NotFoundError):
        store.incident("inc-nope")


def test_a_late_write_never_reopens_a_resolved_incident(store: Store) -> None:
    inc = _incident()
    store.insert_incident(inc)
    escalated = replace(inc, status=IncidentStatus.NEEDS_HUMAN, priority=Priority.P1)
    resolved = replace(inc, status=IncidentStatus.RESOLVED, resolved_at=105.0)
    store.update_incident(resolved)  # the new owner resolved it
    store.update_incident(escalated)  # the old owner's escalation, still queued, lands after
    assert store.incident(inc.id) == resolved
    assert store.open_incidents() == []
    store.update_incident(replace(resolved, priority=Priority.P3))  # a resolved incident still takes edits
    assert store.incident(inc.id).priority is Priority.P3


def test_config_versions_are_kept_and_deduplicated(store: Store) -> None:
    v1 = store.save_config("a: 1", source="f.yaml", now=1.0)
    assert store.save_config("a: 1", source="f.yaml", now=2.0) == v1
    v2 = store.save_config("a: 2", source="f.yaml", now=3.0)
    assert v2.version > v1.version
    assert store.config_before(v2.version) == v1
    assert [v.body for v in store.config_versions()] == ["a: 1", "a: 2"]


def test_settings_persist(store: Store) -> None:
    assert store.get_setting("autonomous_enabled", True) is True
    store.put_setting("autonomous_enabled", False, now=1.0)
    assert store.get_setting("autonomous_enabled", True) is False


def test_a_row_the_store_refuses_is_named_by_its_table_and_key(store: Store) -> None:
    with pytest.raises(StoreConstraintError) as refused:
        StudyStore(store).put_trial(TrialRow("gone", 3, "complete", {"x": 1.0}, value=2.0))
    message = str(refused.value)
    assert message.startswith("cannot write tune_trials (study='gone', number=3): "), message
    assert message.endswith("it refers to tune_studies.name='gone', which must exist"), message
    assert not isinstance(refused.value, StoreError), "writing it again fails the same way: never retried"
    assert StudyStore(store).trials("gone") == []


def test_a_bad_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="store_url"):
        Store.open("not a url")
