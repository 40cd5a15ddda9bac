"""Conversions between table rows and the frozen records of :mod:`novacron.model`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from novacron.model import (
    Action,
    ActionId,
    ActionKind,
    ActionStatus,
    FaultKind,
    Incident,
    IncidentId,
    IncidentStatus,
    Priority,
    RiskLevel,
    TargetId,
    TimelineEvent,
)

__all__ = ["ActionRecord", "action_from_row", "incident_from_row", "incident_values", "timeline_from_row"]


@dataclass(frozen=True, slots=True)
class ActionRecord:
    """An action as stored: the request plus its status and timings."""

    action: Action
    status: ActionStatus
    created_at: float
    started_at: float | None
    finished_at: float | None
    detail: str


def incident_values(inc: Incident) -> dict[str, Any]:
    """Column values for an incident row."""
    return {
        "id": inc.id,
        "target": inc.target,
        "kind": inc.kind.value,
        "status": inc.status.value,
        "priority": int(inc.priority),
        "opened_at": inc.opened_at,
        "since": inc.since,
        "resolved_at": inc.resolved_at,
        "fault_count": inc.fault_count,
        "preventive": inc.preventive,
        "summary": inc.summary,
    }


def incident_from_row(row: Mapping[str, Any]) -> Incident:
    """An :class:`Incident` from a row mapping."""
    return Incident(
        id=IncidentId(row["id"]),
        target=TargetId(row["target"]),
        kind=FaultKind(row["kind"]),
        status=IncidentStatus(row["status"]),
        priority=Priority(row["priority"]),
        opened_at=row["opened_at"],
        since=row["since"],
        resolved_at=row["resolved_at"],
        fault_count=row["fault_count"],
        preventive=bool(row["preventive"]),
        summary=row["summary"],
    )


def timeline_from_row(row: Mapping[str, Any]) -> TimelineEvent:
    """A :class:`TimelineEvent` from a row mapping."""
    return TimelineEvent(time=row["time"], kind=row["kind"], detail=row["detail"], data=row["data"] or {})


def action_from_row(row: Mapping[str, Any]) -> ActionRecord:
    """An :class:`ActionRecord` from a row mapping."""
    action = Action(
        id=ActionId(row["id"]),
        kind=ActionKind(row["kind"]),
        target=TargetId(row["target"]),
        risk=RiskLevel(row["risk"]),
        idempotency_key=row["idempotency_key"],
        incident_id=IncidentId(row["incident_id"]) if row["incident_id"] else None,
        params=row["params"] or {},
        reason=row["reason"],
        requested_by=row["requested_by"],
        inverse_of=ActionId(row["inverse_of"]) if row["inverse_of"] else None,
    )
    return ActionRecord(
        action=action,
        status=ActionStatus(row["status"]),
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        detail=row["detail"],
    )
