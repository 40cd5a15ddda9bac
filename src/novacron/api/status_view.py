"""Fleet status as an operator reads it: the controller's liveness and every target's state.

Built from the store alone, so ``novacron status`` works whether the controller runs,
hangs, was killed or never started, and ``GET /status`` answers the same document. What
the controller last wrote is checked against the machine where possible: a controller
whose pid is gone is ``down`` (not "healthy as of its last write"), and a target whose
processes are gone while nobody supervises it is ``stopped``.

Field names are stable (documented in docs/operations.md); new fields may be added.
"""

from __future__ import annotations

import os
import socket
from typing import Any, Literal

import psutil
from pydantic import BaseModel, ValidationError

from novacron.api.schemas import StoreConditionOut
from novacron.model import Incident
from novacron.settings import HaSettings
from novacron.store import ProcessRecord, Store, TargetStatusRow
from novacron.store.guard import GuardedStore
from novacron.store.learning import POLICY_IN_USE_KEY
from novacron.store.nodes import node_views
from novacron.store.presence import STALE_AFTER_S, ControllerRecord, Presence, presence
from novacron.store.rails import QUARANTINE, RailRepository

__all__ = [
    "ControllerOut",
    "LastFaultOut",
    "NodeOut",
    "StatusOut",
    "TargetStatusOut",
    "fleet_nodes",
    "fleet_status",
    "store_condition",
]

ControllerState = Literal["running", "stale", "down", "stopped", "never_started"]
_KILL_SWITCH_KEY = "autonomous_enabled"
NODE_STALE_S = HaSettings().node_stale_s  # the default; the status reader has no spec


class ControllerOut(BaseModel):
    """The controller as the store knows it, checked against the machine."""

    state: ControllerState
    pid: int | None = None
    host: str | None = None
    version: str | None = None
    spec: str | None = None
    api_url: str | None = None
    metrics_url: str | None = None
    started_at: float | None = None
    uptime_s: float | None = None
    stopped_at: float | None = None
    last_write_at: float | None = None
    last_write_s_ago: float | None = None
    autonomous: bool = True
    dry_run: bool = False
    store: StoreConditionOut | None = None  # from the live controller (the API inside `novacron run`)


class LastFaultOut(BaseModel):
    """The newest fault the controller saw on a target."""

    at: float
    ago_s: float
    kind: str
    detail: str
    incident: str | None = None


class TargetStatusOut(BaseModel):
    """One target: its state word, processes, restarts and last fault."""

    name: str
    state: str
    health: str
    pid: int | None
    pids: list[int]
    uptime_s: float | None
    restarts: int
    running: int
    desired: int
    last_fault: LastFaultOut | None
    incident: str | None
    incident_status: str | None
    incident_priority: str | None
    updated_at: float
    stale: bool
    quarantined_until: float | None = None  # wall-clock end of a flap quarantine in force


class NodeOut(BaseModel):
    """One controller node sharing the store (several controllers: leases and heartbeats)."""

    id: str
    state: str  # active, draining, stopped; "dead" when its heartbeat is stale
    host: str
    pid: int
    version: str
    api_url: str | None
    started_at: float
    last_heartbeat_at: float
    last_heartbeat_s_ago: float
    shards: int
    targets: int


class LearningOut(BaseModel):
    """Which remediation policy chooses the steps now, and why (the spec's ``learning`` block)."""

    policy: str
    learner: str
    acting: str  # the learner's name, or "ladder" while it falls back
    reason: str
    at: float
    estimate: dict[str, Any] | None = None  # the last value check against the ladder


class StatusOut(BaseModel):
    """``novacron status --json`` and ``GET /status``."""

    controller: ControllerOut
    targets: list[TargetStatusOut]
    nodes: list[NodeOut] = []
    learning: LearningOut | None = None


def fleet_status(store: Store, *, now: float, in_process: bool = False) -> StatusOut:
    """The fleet's status from ``store`` at wall-clock time ``now``.

    ``in_process``: the caller runs beside the live controller (the API inside ``novacron
    run``), so the controller is running whatever its record says.
    """
    here = socket.gethostname()
    ctl = _controller(presence(store), now=now, here=here)
    if in_process and ctl.state != "running":
        ctl = ctl.model_copy(update={"state": "running", "pid": os.getpid(), "host": here})
    ctl.autonomous = bool(store.get_setting(_KILL_SWITCH_KEY, True))
    local = ctl.host == here
    procs: dict[str, list[ProcessRecord]] = {}
    for rec in store.processes():
        procs.setdefault(rec.target, []).append(rec)
    open_by_target: dict[str, Incident] = {inc.target: inc for inc in store.open_incidents()}
    quarantines = {r.target: r.until for r in RailRepository(store).rows(QUARANTINE) if r.until and r.until > now}
    targets = []
    for row in store.target_statuses():
        live = [p for p in procs.get(row.target, []) if not local or _alive(p.pid, p.create_time)]
        counted = row.target in procs  # the target runs local processes the store records
        out = _target(row, live, open_by_target.get(row.target), ctl.state, local=local, counted=counted, now=now)
        if row.target in quarantines:  # in force whether or not a controller runs
            out = out.model_copy(update={"state": "quarantined", "quarantined_until": quarantines[row.target]})
        targets.append(out)
    return StatusOut(controller=ctl, targets=targets, nodes=fleet_nodes(store, now=now), learning=_learning(store))


def _learning(store: Store) -> LearningOut | None:
    """The policy in use as the controller last recorded it (None: no learning block, or unreadable)."""
    try:
        return LearningOut.model_validate(store.get_setting(POLICY_IN_USE_KEY))
    except ValidationError:
        return None


def fleet_nodes(store: Store, *, now: float) -> list[NodeOut]:
    """Every controller node on the store, with its heartbeat, shards and targets."""
    out = []
    for v in node_views(store, now=now, stale_s=NODE_STALE_S):
        n = v.node
        state = n.state if v.live or n.state == "stopped" else "dead"
        out.append(
            NodeOut(
                id=n.node_id,
                state=state,
                host=n.host,
                pid=n.pid,
                version=n.version,
                api_url=n.api_url,
                started_at=n.started_at,
                last_heartbeat_at=n.heartbeat_at,
                last_heartbeat_s_ago=round(max(0.0, now - n.heartbeat_at), 1),
                shards=v.shards if state != "stopped" else 0,
                targets=n.targets if state in ("active", "draining") else 0,
            )
        )
    return out


def store_condition(store: Store) -> StoreConditionOut | None:
    """The live controller's store condition (None for a store without write-behind)."""
    if not isinstance(store, GuardedStore):
        return None
    c = store.condition
    return StoreConditionOut(
        degraded=c.degraded,
        pending_writes=c.pending,
        write_failures=c.failures,
        last_error=c.last_error,
        degraded_since=c.since,
    )


def _controller(p: Presence, *, now: float, here: str) -> ControllerOut:
    rec: ControllerRecord | None = p.record
    if rec is None:
        return ControllerOut(state="never_started")
    age = None if p.last_write is None else max(0.0, now - p.last_write)
    state: ControllerState = "running"
    if rec.stopped_at is not None:
        state = "stopped"
    elif rec.host == here and not _alive(rec.pid, None, started_by=rec.started_at):
        state = "down"
    elif age is None or age > STALE_AFTER_S:
        state = "stale"
    return ControllerOut(
        state=state,
        pid=rec.pid,
        host=rec.host,
        version=rec.version,
        spec=rec.spec,
        api_url=rec.api_url,
        metrics_url=rec.metrics_url,
        started_at=rec.started_at,
        uptime_s=round(now - rec.started_at, 1) if state in ("running", "stale") else None,
        stopped_at=rec.stopped_at,
        last_write_at=p.last_write,
        last_write_s_ago=None if age is None else round(age, 1),
        dry_run=rec.dry_run,
    )


def _target(
    row: TargetStatusRow,
    live: list[ProcessRecord],
    inc: Incident | None,
    controller: ControllerState,
    *,
    local: bool,
    counted: bool,
    now: float,
) -> TargetStatusOut:
    supervised = controller == "running"
    state = row.state or row.health
    if not supervised and local and len(live) < row.desired:
        # Nobody restarts what died while the controller is not running: say so.
        state = "stopped" if not live else "unhealthy"
    pids = sorted(p.pid for p in live)
    fault = row.last_fault
    return TargetStatusOut(
        name=row.target,
        state=state,
        health=row.health,
        pid=pids[0] if pids else None,
        pids=pids,
        uptime_s=round(now - min(p.create_time for p in live), 1) if live else None,
        restarts=row.restarts,
        # Counted from live processes where there are any to count: a sim target (a twin VM) or a
        # guest has none, and showed "healthy 0/1"; its count is the controller's own.
        running=len(live) if local and (counted or not supervised) else row.running,
        desired=row.desired,
        last_fault=None
        if not fault
        else LastFaultOut(
            at=float(fault["at"]),
            ago_s=round(max(0.0, now - float(fault["at"])), 1),
            kind=str(fault.get("kind", "")),
            detail=str(fault.get("detail", "")),
            incident=fault.get("incident"),
        ),
        incident=inc.id if inc else None,
        incident_status=inc.status.value if inc else None,
        incident_priority=f"P{int(inc.priority)}" if inc else None,
        updated_at=row.updated_at,
        stale=not supervised,
    )


def _alive(pid: int, create_time: float | None, *, started_by: float | None = None) -> bool:
    """Whether ``pid`` runs and is the process we mean (not a reused pid)."""
    try:
        proc = psutil.Process(pid)
        created = proc.create_time()
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
    except psutil.Error:
        return False
    if create_time is not None:
        return abs(created - create_time) < 1.0
    return started_by is None or created <= started_by + 1.0
