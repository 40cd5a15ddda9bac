"""Request and response models of the HTTP API (published in /openapi.json)."""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr

from novacron.healing.executor import ExecResult
from novacron.model import MANUAL_ACTIONS, Incident, TimelineEvent
from novacron.resourcespec import Bytes, Cores
from novacron.store import ActionRecord, AuditEntry
from novacron.store.approvals import Request

__all__ = [
    "ActionOut",
    "ApprovalIn",
    "ApprovalOut",
    "AuditOut",
    "ErrorOut",
    "ExecOut",
    "HealIn",
    "HealthOut",
    "IncidentDetailOut",
    "IncidentOut",
    "IntakeOut",
    "KillSwitchOut",
    "OkOut",
    "PendingApprovalOut",
    "RollbackActionIn",
    "RollbackIn",
    "RollbackTargetIn",
    "StoreConditionOut",
    "TargetOut",
    "TimelineOut",
    "WhoAmIOut",
]

_NAME = Field(min_length=1, max_length=128)
_MAX_REPLICA = 999  # a target has at most 1000 replicas (the spec's bound)


class _In(BaseModel):
    """Request bodies refuse unknown fields, so a typo is an error rather than ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ErrorOut(BaseModel):
    """Every error: what went wrong and, for bad input, which field."""

    detail: str
    field: str | None = None


class StoreConditionOut(BaseModel):
    """The store as the controller's healing path sees it (degraded while writes fail)."""

    degraded: bool
    pending_writes: int
    write_failures: int
    last_error: str | None = None
    degraded_since: float | None = None


class HealthOut(BaseModel):
    """Liveness of the API and whether a controller runs in this process.

    ``degraded``: the controller heals, but something it depends on fails (``store``).
    """

    status: Literal["ok", "degraded"] = "ok"
    controller: bool
    autonomous: bool | None
    config_version: int | None
    store: StoreConditionOut | None = None


class WhoAmIOut(BaseModel):
    """Who the bearer token is."""

    name: str
    role: Literal["viewer", "operator", "admin"]


class TargetOut(BaseModel):
    """One target's health and replicas."""

    target: str
    health: str
    running: int
    desired: int
    incident: str | None = None


class IncidentOut(BaseModel):
    """One incident, with its detection and repair times."""

    id: str
    target: str
    kind: str
    status: str
    priority: str
    opened_at: float
    since: float
    resolved_at: float | None
    fault_count: int
    preventive: bool
    summary: str
    mttd_ms: float
    mttr_ms: float | None

    @classmethod
    def of(cls, inc: Incident) -> IncidentOut:
        """From the record."""
        mttr = inc.mttr_s
        return cls(
            id=inc.id,
            target=inc.target,
            kind=inc.kind.value,
            status=inc.status.value,
            priority=f"P{int(inc.priority)}",
            opened_at=inc.opened_at,
            since=inc.since,
            resolved_at=inc.resolved_at,
            fault_count=inc.fault_count,
            preventive=inc.preventive,
            summary=inc.summary,
            mttd_ms=round(inc.mttd_s * 1000, 1),
            mttr_ms=None if mttr is None else round(mttr * 1000, 1),
        )


class TimelineOut(BaseModel):
    """One timeline line."""

    time: float
    kind: str
    detail: str
    data: dict[str, Any]

    @classmethod
    def of(cls, ev: TimelineEvent) -> TimelineOut:
        """From the record."""
        return cls(time=ev.time, kind=ev.kind, detail=ev.detail, data=dict(ev.data))


class ActionOut(BaseModel):
    """One action as stored."""

    id: str
    kind: str
    target: str
    risk: str
    status: str
    incident_id: str | None
    requested_by: str
    reason: str
    params: dict[str, Any]
    created_at: float
    started_at: float | None
    finished_at: float | None
    detail: str

    @classmethod
    def of(cls, rec: ActionRecord) -> ActionOut:
        """From the stored record."""
        a = rec.action
        return cls(
            id=a.id,
            kind=a.kind.value,
            target=a.target,
            risk=a.risk.label,
            status=rec.status.value,
            incident_id=a.incident_id,
            requested_by=a.requested_by,
            reason=a.reason,
            params=dict(a.params),
            created_at=rec.created_at,
            started_at=rec.started_at,
            finished_at=rec.finished_at,
            detail=rec.detail,
        )


class IncidentDetailOut(BaseModel):
    """An incident with its timeline, its actions and where its post-mortem is."""

    incident: IncidentOut
    timeline: list[TimelineOut]
    actions: list[ActionOut]
    acknowledged_by: str | None
    postmortem_url: str


class AuditOut(BaseModel):
    """One audit line: who did what, when, with what result."""

    id: int
    time: float
    actor: str
    verb: str
    subject: str
    result: str
    detail: dict[str, Any]

    @classmethod
    def of(cls, e: AuditEntry) -> AuditOut:
        """From the stored entry."""
        return cls(
            id=e.id, time=e.time, actor=e.actor, verb=e.verb, subject=e.subject, result=e.result, detail=dict(e.detail)
        )


class PendingApprovalOut(BaseModel):
    """An action waiting for a human's decision."""

    id: str
    kind: str
    target: str
    risk: str
    incident_id: str | None
    reason: str
    asked_by: str  # the node waiting on it (a node that took the target over waits on the same request)
    asked_at: float | None  # None: asked on this node, not yet in the store

    @classmethod
    def of(cls, r: Request) -> PendingApprovalOut:
        """From the stored request."""
        a = r.action
        return cls(
            id=a.id,
            kind=a.kind.value,
            target=a.target,
            risk=a.risk.label,
            incident_id=a.incident_id,
            reason=a.reason,
            asked_by=r.asked_by,
            asked_at=r.asked_at,
        )


# Every action kind a human may request (escalation is the controller's own hand-over; a
# patch deployment and circuit routing are proposed by agents with the parameters they need).
# Traffic actions (reroute, drain, undrain) need a target with a load-balancer frontend; a
# promotion is an experiment's own last step.
ManualAction = Literal[
    "restart",
    "stop",
    "start",
    "replace",
    "scale_out",
    "scale_in",
    "config_rollback",
    "cleanup",
    "reroute",
    "drain",
    "undrain",
    "vm_migrate",
    "vm_snapshot",
    "vm_rollback",
    "vm_resize",
    "reallocate",
]
# The literal spells the kinds out for the OpenAPI schema; the model says which they are.
assert get_args(ManualAction) == MANUAL_ACTIONS


_Replica = Annotated[StrictInt, Field(ge=0, le=_MAX_REPLICA)]
_Server = Annotated[StrictStr, Field(min_length=1, max_length=64)]
_Weights = dict[_Server, Annotated[StrictInt, Field(ge=0, le=256)]]
_Scalar = StrictInt | StrictFloat | StrictStr | StrictBool | None


def _flat(value: Any) -> Any:
    """A scalar, or a list or mapping of scalars: action parameters never nest deeper."""
    if isinstance(value, list):
        items = value
    elif isinstance(value, dict):
        items = list(value.values())
    else:
        items = [value]
    if any(isinstance(v, list | dict) for v in items):
        raise ValueError("must be a scalar, or a flat list or mapping of scalars")
    return value


class HealParams(BaseModel):
    """Parameters of a manual action, typed: a wrong type or range is a 422 naming the field.

    Other keys (an actuator's own) are accepted when they are flat: a scalar, or a list or
    mapping of scalars.
    """

    model_config = ConfigDict(extra="allow", frozen=True)
    __pydantic_extra__: dict[str, Annotated[Any, AfterValidator(_flat)]] = Field(init=False)

    replica: _Replica | None = Field(None, description="One replica (start, stop, restart, replace).")
    replicas: list[_Replica] | None = Field(None, min_length=1, max_length=1000, description="Several replicas.")
    count: Annotated[StrictInt, Field(ge=1, le=1000)] | None = Field(None, description="Scale by this many.")
    path: str | None = Field(None, min_length=1, max_length=4096, description="The cleanup path.")
    cpu: Cores | None = Field(None, description="reallocate: cores (1.5) or millicores ('500m').")
    cpu_weight: int | None = Field(None, ge=1, le=10_000, description="reallocate: the CPU share under contention.")
    memory: Bytes | None = Field(None, description="reallocate: the hard memory limit (bytes or '512Mi').")
    memory_high: Bytes | None = Field(None, description="reallocate: where memory reclaim starts.")
    weights: _Weights | None = Field(None, min_length=1, description="reroute: {HAProxy server: weight 0..256}.")
    from_weights: _Weights | None = Field(None, description="reroute: the weights its inverse restores.")
    server: _Server | None = Field(None, description="drain, undrain: the HAProxy server (r<i>, v_<arm>).")


class HealIn(_In):
    """A manual action on a target; it goes through the executor and safety gate."""

    target: str = _NAME
    action: ManualAction
    params: HealParams = Field(default_factory=HealParams)
    wait_s: float = Field(15.0, ge=0, le=120, description="How long to wait for the result before answering 202.")


class RollbackTargetIn(_In):
    """Roll a target back to the previous spec version."""

    target: str = _NAME
    wait_s: float = Field(15.0, ge=0, le=120)


class RollbackActionIn(_In):
    """Undo one action by applying its inverse."""

    action_id: str = Field(min_length=1, max_length=64)
    wait_s: float = Field(15.0, ge=0, le=120)


RollbackIn = RollbackTargetIn | RollbackActionIn


class ExecOut(BaseModel):
    """How an action ended, or that it is still running (``status: running``)."""

    action_id: str | None
    kind: str
    target: str
    status: str
    detail: str
    verified: bool

    @classmethod
    def of(cls, r: ExecResult) -> ExecOut:
        """From the executor's result."""
        return cls(
            action_id=r.action.id,
            kind=r.action.kind.value,
            target=r.action.target,
            status=r.status.value,
            detail=r.detail,
            verified=r.verified,
        )


class ApprovalIn(_In):
    """A human's decision on a pending action."""

    decision: Literal["approve", "reject"]


class ApprovalOut(BaseModel):
    """The decision as recorded."""

    action_id: str
    decision: Literal["approve", "reject"]
    by: str


class KillSwitchOut(BaseModel):
    """The kill switch's new state."""

    autonomous: bool
    by: str


class ReloadOut(BaseModel):
    """A reload of the spec file: the version now in force and what happened to each target."""

    version: int
    added: list[str]
    removed: list[str]
    changed: list[str] = Field(description="Restarted with their new definition.")
    rechecked: list[str] = Field(
        description="Only their checks, dependencies, labels or start timeout changed: re-armed, the process ran on."
    )
    unchanged: list[str] = Field(description="Left running untouched.")
    policy_changed: bool
    failed: dict[str, str] = Field(description="Targets whose start or restart was not verified, and why.")
    by: str


class OkOut(BaseModel):
    """A plain acknowledgement."""

    ok: bool = True
    detail: str = ""


class IntakeOut(BaseModel):
    """What an Alertmanager delivery did."""

    received: int
    opened: list[str]
    repeated: int
    resolved: list[str]
