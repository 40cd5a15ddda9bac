"""The store: every durable fact of the controller, behind small synchronous methods.

Writes are single short transactions (SQLite in WAL mode commits in well under a
millisecond), so the controller calls them inline; anything a crash must not lose —
an action's idempotency key above all — is committed before the effect it guards.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Self

from sqlalchemy import Engine, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from novacron.errors import NotFoundError, StoreConstraintError, StoreError
from novacron.model import (
    ENDED_STATUSES,
    Action,
    ActionId,
    ActionStatus,
    Fault,
    Incident,
    IncidentId,
    IncidentStatus,
    TimelineEvent,
)
from novacron.store import tables as t
from novacron.store.db import make_engine, migrate, missing_database
from novacron.store.records import (
    ActionRecord,
    action_from_row,
    incident_from_row,
    incident_values,
    timeline_from_row,
)

__all__ = ["AuditEntry", "ConfigVersion", "ProcessRecord", "Store", "TargetStatusRow"]

_INFLIGHT = (ActionStatus.PLANNED.value, ActionStatus.APPLYING.value, ActionStatus.APPLIED.value)

_ENDED = sorted(s.value for s in ENDED_STATUSES)  # the status column values of an ended incident


@dataclass(frozen=True, slots=True)
class ConfigVersion:
    """One stored version of the fleet spec."""

    version: int
    created_at: float
    sha256: str
    source: str
    body: str


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """Who did what, when, with what result."""

    id: int
    time: float
    actor: str
    verb: str
    subject: str
    result: str
    detail: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ProcessRecord:
    """A process the controller started, kept so a restarted controller can adopt it.

    Written twice per spawn: first as an intent (``pid`` 0, before the process exists),
    then with the pid. ``nonce`` is in the child's environment, so a controller that died
    between the two writes still recognises its child.
    """

    target: str
    replica: int
    pid: int
    create_time: float
    port: int | None
    nonce: str = ""

    @property
    def spawned(self) -> bool:
        """Whether the pid is known (not just the intent)."""
        return self.pid > 0


@dataclass(frozen=True, slots=True)
class TargetStatusRow:
    """The controller's latest view of a target, for `novacron status` and the API."""

    target: str
    health: str
    running: int
    desired: int
    updated_at: float
    detail: str
    state: str | None = None
    restarts: int = 0
    last_fault: Mapping[str, Any] | None = None


class Store:
    """Repository over the schema in :mod:`novacron.store.tables`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str, *, create: bool = True) -> Self:
        """Connect to ``url`` and migrate the schema to the newest revision.

        With ``create=False`` a SQLite file that does not exist is a :class:`NotFoundError`
        instead of a new, empty store.
        """
        if not create and (path := missing_database(url)) is not None:
            raise NotFoundError(f"no store at {path}")
        engine = make_engine(url)
        migrate(engine)
        return cls(engine)

    def close(self) -> None:
        """Release connections."""
        self.engine.dispose()

    def _exec(self, stmt: Any) -> Any:
        try:
            with self.engine.begin() as conn:
                return conn.execute(stmt)
        except IntegrityError:
            raise
        except SQLAlchemyError as exc:
            raise StoreError(f"store write failed: {_reason(exc)}", delay=0.5) from exc

    def _rows(self, stmt: Any) -> list[Mapping[str, Any]]:
        try:
            with self.engine.connect() as conn:
                return [dict(r._mapping) for r in conn.execute(stmt)]
        except SQLAlchemyError as exc:
            raise StoreError(f"store read failed: {_reason(exc)}", delay=0.5) from exc

    # -- config versions ---------------------------------------------------------------
    def save_config(self, body: str, *, source: str, now: float) -> ConfigVersion:
        """Keep ``body`` as a new version unless it equals the newest one."""
        sha = hashlib.sha256(body.encode()).hexdigest()
        latest = self.latest_config()
        if latest is not None and latest.sha256 == sha:
            return latest
        self._exec(insert(t.config_versions).values(created_at=now, sha256=sha, source=source, body=body))
        newest = self.latest_config()
        assert newest is not None
        return newest

    def latest_config(self) -> ConfigVersion | None:
        """The newest stored spec version."""
        rows = self._rows(select(t.config_versions).order_by(t.config_versions.c.version.desc()).limit(1))
        return ConfigVersion(**rows[0]) if rows else None

    def config_versions(self) -> list[ConfigVersion]:
        """Every stored version, oldest first."""
        return [ConfigVersion(**r) for r in self._rows(select(t.config_versions).order_by("version"))]

    def config_before(self, version: int) -> ConfigVersion | None:
        """The newest version older than ``version`` (the target of a rollback)."""
        stmt = (
            select(t.config_versions)
            .where(t.config_versions.c.version < version)
            .order_by(t.config_versions.c.version.desc())
            .limit(1)
        )
        rows = self._rows(stmt)
        return ConfigVersion(**rows[0]) if rows else None

    # -- incidents ---------------------------------------------------------------------
    def insert_incident(self, inc: Incident) -> None:
        """Persist a new incident (a row already there is left alone: see :func:`incident_insert`)."""
        self._exec(incident_insert(self.engine.dialect.name, incident_values(inc)))

    def update_incident(self, inc: Incident) -> None:
        """Persist an incident's new state."""
        values = incident_values(inc)
        del values["id"]
        stmt = update(t.incidents).where(t.incidents.c.id == inc.id)
        if inc.status not in ENDED_STATUSES:
            # A resolved (or closed) incident is final. With several controllers a late write from one
            # that has lost the target (an escalation still in its write queue) would
            # otherwise reopen what the new owner resolved, and the next fault on the
            # target would be folded into an incident nobody is healing.
            stmt = stmt.where(t.incidents.c.status.notin_(_ENDED))
        self._exec(stmt.values(**values))

    def incident(self, incident_id: str) -> Incident:
        """The incident called ``incident_id``."""
        rows = self._rows(select(t.incidents).where(t.incidents.c.id == incident_id))
        if not rows:
            raise NotFoundError(f"no incident {incident_id!r}")
        return incident_from_row(rows[0])

    def incidents(self, *, status: IncidentStatus | None = None, limit: int = 100) -> list[Incident]:
        """Incidents, newest first, optionally of one status."""
        stmt = select(t.incidents).order_by(t.incidents.c.opened_at.desc()).limit(limit)
        if status is not None:
            stmt = stmt.where(t.incidents.c.status == status.value)
        return [incident_from_row(r) for r in self._rows(stmt)]

    def open_incidents(self) -> list[Incident]:
        """Every incident not yet resolved (or closed)."""
        stmt = select(t.incidents).where(t.incidents.c.status.notin_(_ENDED))
        return [incident_from_row(r) for r in self._rows(stmt.order_by(t.incidents.c.opened_at))]

    def add_event(self, incident_id: IncidentId, event: TimelineEvent) -> None:
        """Append one timeline line."""
        self._exec(
            insert(t.timeline).values(
                incident_id=incident_id,
                time=event.time,
                kind=event.kind,
                detail=event.detail,
                data=dict(event.data),
            )
        )

    def timeline(self, incident_id: str) -> list[TimelineEvent]:
        """An incident's timeline in order."""
        stmt = select(t.timeline).where(t.timeline.c.incident_id == incident_id).order_by(t.timeline.c.id)
        return [timeline_from_row(r) for r in self._rows(stmt)]

    def add_fault(self, fault: Fault, incident_id: IncidentId) -> None:
        """Record a fault and the incident it belongs to; the same fault filed twice is one fault."""
        with contextlib.suppress(IntegrityError):
            self._add_fault(fault, incident_id)

    def _add_fault(self, fault: Fault, incident_id: IncidentId) -> None:
        self._exec(
            insert(t.faults).values(
                id=fault.id,
                incident_id=incident_id,
                target=fault.target,
                kind=fault.kind.value,
                detected_at=fault.detected_at,
                since=fault.since,
                preventive=fault.preventive,
                evidence=_jsonable(fault.evidence),
            )
        )

    def faults(self, incident_id: str) -> list[Mapping[str, Any]]:
        """The faults recorded for an incident, oldest first."""
        return self._rows(select(t.faults).where(t.faults.c.incident_id == incident_id).order_by("detected_at"))

    # -- actions -----------------------------------------------------------------------
    def claim_action(self, action: Action, status: ActionStatus, *, now: float) -> ActionRecord | None:
        """Persist ``action`` under its idempotency key.

        Returns None when the key was free (the caller may apply the action), or the
        existing record when an action with the same key was already stored.
        """
        try:
            self._exec(insert(t.actions).values(**action_row(action, status, now=now)))
        except IntegrityError:
            return self.action_by_key(action.idempotency_key)
        return None

    def set_action_status(
        self,
        action_id: ActionId,
        status: ActionStatus,
        *,
        started_at: float | None = None,
        finished_at: float | None = None,
        detail: str | None = None,
    ) -> None:
        """Move an action to ``status``, recording timings and detail when given."""
        values: dict[str, Any] = {"status": status.value}
        if started_at is not None:
            values["started_at"] = started_at
        if finished_at is not None:
            values["finished_at"] = finished_at
        if detail is not None:
            values["detail"] = detail
        self._exec(update(t.actions).where(t.actions.c.id == action_id).values(**values))

    def action(self, action_id: str) -> ActionRecord:
        """The action called ``action_id``."""
        rows = self._rows(select(t.actions).where(t.actions.c.id == action_id))
        if not rows:
            raise NotFoundError(f"no action {action_id!r}")
        return action_from_row(rows[0])

    def action_by_key(self, key: str) -> ActionRecord | None:
        """The action stored under idempotency key ``key``, if any."""
        rows = self._rows(select(t.actions).where(t.actions.c.idempotency_key == key))
        return action_from_row(rows[0]) if rows else None

    def actions(self, *, incident_id: str | None = None, limit: int = 100) -> list[ActionRecord]:
        """Actions, newest first, optionally for one incident."""
        stmt = select(t.actions).order_by(t.actions.c.created_at.desc()).limit(limit)
        if incident_id is not None:
            stmt = stmt.where(t.actions.c.incident_id == incident_id)
        return [action_from_row(r) for r in self._rows(stmt)]

    def inflight_actions(self) -> list[ActionRecord]:
        """Actions that were planned or applying when the controller last stopped."""
        stmt = select(t.actions).where(t.actions.c.status.in_(_INFLIGHT)).order_by(t.actions.c.created_at)
        return [action_from_row(r) for r in self._rows(stmt)]

    def count_actions(self, *, status: ActionStatus | None = None) -> int:
        """How many actions are stored (of one status)."""
        stmt = select(func.count().label("n")).select_from(t.actions)
        if status is not None:
            stmt = stmt.where(t.actions.c.status == status.value)
        return int(self._rows(stmt)[0]["n"])

    # -- audit -------------------------------------------------------------------------
    def audit(self, *, now: float, actor: str, verb: str, subject: str, result: str, **detail: Any) -> None:
        """Append to the audit trail."""
        # Clipped, not refused: a refusal about a very long path must still be audited.
        text = _clip(t.audit, {"actor": actor, "verb": verb, "subject": subject, "result": result})
        self._exec(insert(t.audit).values(time=now, **text, detail=_jsonable(detail)))

    def audit_log(self, *, limit: int = 200) -> list[AuditEntry]:
        """Newest audit entries first."""
        rows = self._rows(select(t.audit).order_by(t.audit.c.id.desc()).limit(limit))
        return [AuditEntry(**r) for r in rows]

    # -- processes and target status ---------------------------------------------------
    def set_process(self, rec: ProcessRecord) -> None:
        """Remember a started process (replacing the replica's previous one)."""
        self._upsert(t.processes, dataclasses.asdict(rec))

    def remove_process(self, target: str, replica: int) -> None:
        """Forget a replica's process."""
        self._exec(delete(t.processes).where((t.processes.c.target == target) & (t.processes.c.replica == replica)))

    def processes(self) -> list[ProcessRecord]:
        """Every remembered process."""
        cols = ("target", "replica", "pid", "create_time", "port")
        rows = self._rows(select(t.processes))
        return [ProcessRecord(**{c: r[c] for c in cols}, nonce=r["nonce"] or "") for r in rows]

    def set_target_status(self, row: TargetStatusRow) -> None:
        """Upsert a target's status line."""
        values = dataclasses.asdict(row)
        values["last_fault"] = None if row.last_fault is None else _jsonable(row.last_fault)
        self._upsert(t.target_status, values)

    def remove_target_status(self, target: str) -> None:
        """Forget a target's status row (removed from the spec)."""
        self._exec(delete(t.target_status).where(t.target_status.c.target == target))

    def target_statuses(self) -> list[TargetStatusRow]:
        """Every target's latest status line."""
        return [TargetStatusRow(**r) for r in self._rows(select(t.target_status).order_by("target"))]

    # -- agent outputs -----------------------------------------------------------------
    def save_agent_output(self, out: Mapping[str, Any]) -> None:
        """Insert or replace one agent output (its proposals' statuses change as they are routed)."""
        cols = ("id", "agent", "run_at", "targets", "findings", "proposals", "applied", "dry_run", "summary")
        self._upsert(t.agent_outputs, {c: _jsonable(out[c]) for c in cols})

    def agent_outputs(self, *, agent: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Agent outputs, newest first."""
        stmt = select(t.agent_outputs).order_by(t.agent_outputs.c.run_at.desc()).limit(limit)
        if agent is not None:
            stmt = stmt.where(t.agent_outputs.c.agent == agent)
        return [dict(r) for r in self._rows(stmt)]

    # -- settings ----------------------------------------------------------------------
    def get_setting(self, key: str, default: Any = None) -> Any:
        """A persisted controller setting (e.g. the kill switch)."""
        rows = self._rows(select(t.settings_kv.c.value).where(t.settings_kv.c.key == key))
        return rows[0]["value"] if rows else default

    def put_setting(self, key: str, value: Any, *, now: float) -> None:
        """Persist a controller setting."""
        self._upsert(t.settings_kv, {"key": key, "value": value, "updated_at": now})

    def _upsert(self, table: Any, values: dict[str, Any]) -> None:
        """Insert the row, or update the one with its primary key, in one statement.

        Not delete-then-insert: two controllers writing one row at once (a target's status
        across a hand-over) would both delete, both insert, and one fail on the key.
        """
        keys = [c.name for c in table.primary_key.columns]
        ins = (postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert)(table).values(**values)
        updates = {k: ins.excluded[k] for k in values if k not in keys}
        try:
            self._exec(ins.on_conflict_do_update(index_elements=keys, set_=updates))
        except IntegrityError as exc:
            raise StoreConstraintError(_refused(table, keys, values, exc)) from exc


def _reason(exc: SQLAlchemyError) -> str:
    """The database's own reason, without the SQL statement or its parameters (never shown to clients)."""
    orig = getattr(exc, "orig", None)
    text = str(orig) if orig is not None else type(exc).__name__
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__


def _refused(table: Any, keys: list[str], values: Mapping[str, Any], exc: IntegrityError) -> str:
    """Which row the store refused and why: its table and key, the rows it refers to, the database's reason."""
    key = ", ".join(f"{k}={values.get(k)!r}" for k in keys)
    refs = [
        f"{fk.column.table.name}.{fk.column.name}={values[fk.parent.name]!r}"
        for fk in sorted(table.foreign_keys, key=lambda fk: fk.parent.name)
        if values.get(fk.parent.name) is not None
    ]
    where = f"; it refers to {', '.join(refs)}, which must exist" if refs else ""
    return f"cannot write {table.name} ({key}): {_reason(exc)}{where}"


def _clip(table: Any, values: Mapping[str, str]) -> dict[str, str]:
    """Cut each text value to its column's length (marked with an ellipsis)."""
    out = {}
    for name, value in values.items():
        limit = getattr(table.c[name].type, "length", None)
        out[name] = value if limit is None or len(value) <= limit else value[: limit - 1] + "…"
    return out


def incident_insert(dialect: str, values: dict[str, Any]) -> Any:
    """An incident row's insert that does nothing when the row is already there.

    With several controllers the claim of an incident's first action writes the row itself,
    in the claim's transaction (the action references it), while the incident's own insert
    may still wait in the write-behind queue; that insert then finds it and must not fail.
    """
    if dialect == "postgresql":
        return postgresql.insert(t.incidents).values(**values).on_conflict_do_nothing(index_elements=["id"])
    if dialect == "sqlite":
        return sqlite.insert(t.incidents).values(**values).on_conflict_do_nothing(index_elements=["id"])
    return insert(t.incidents).values(**values)


def action_row(action: Action, status: ActionStatus, *, now: float) -> dict[str, Any]:
    """The ``actions`` row of a newly claimed action."""
    return {
        "id": action.id,
        "idempotency_key": action.idempotency_key,
        "incident_id": action.incident_id,
        "target": action.target,
        "kind": action.kind.value,
        "risk": int(action.risk),
        "status": status.value,
        "params": _jsonable(action.params),
        "reason": action.reason,
        "requested_by": action.requested_by,
        "inverse_of": action.inverse_of,
        "created_at": now,
    }


def _jsonable(data: Mapping[str, Any] | Sequence[Any] | Any) -> Any:
    """Convert mappings/sequences of simple values into plain JSON types."""
    if isinstance(data, Mapping):
        return {str(k): _jsonable(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [_jsonable(v) for v in data]
    if isinstance(data, str | int | float | bool) or data is None:
        return data
    return str(data)
