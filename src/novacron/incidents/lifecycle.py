"""Incident lifecycle: one incident per fault episode, its timeline, resolution and escalation.

Repeated signals about a target with an open incident are folded into it (counted, and
kept as faults) rather than opening new incidents. Every change is written to the store
at once, so a restarted controller picks the episode up where it was.
"""

from __future__ import annotations

import signal
import uuid
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

from novacron.clock import Clock
from novacron.model import Fault, Incident, IncidentId, IncidentStatus, Priority, TimelineEvent
from novacron.store import Store
from novacron.telemetry import Metrics, get_logger

__all__ = ["IncidentManager", "describe_exit"]

_INITIAL_PRIORITY = Priority.P2  # automated, fully handled; raised when automation fails
# Log levels by meaning: a fault or a raised priority is a warning, a hand-over to a human an
# error; the rest of the timeline (diagnosis, actions, recovery) is information.
_LEVELS = {
    "detected": "warning",
    "priority": "warning",
    "verification_failed": "warning",
    "rolled_back": "warning",
    "escalated": "error",
}


class IncidentManager:
    """Opens, deduplicates, annotates, resolves and escalates incidents."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        metrics: Metrics,
        *,
        on_change: Callable[[Incident, TimelineEvent], None] | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._metrics = metrics
        self._on_change = on_change
        self._open: dict[str, Incident] = {}

    def load_open(self) -> list[Incident]:
        """Reload open incidents from the store (controller start)."""
        self._open = {inc.target: inc for inc in self._store.open_incidents()}
        self._metrics.open_incidents.set(len(self._open))
        return list(self._open.values())

    def refresh(self, targets: Iterable[str]) -> list[Incident]:
        """Take the targets' open incidents from the store (another controller may have opened them)."""
        wanted = set(targets)
        found: dict[str, Incident] = {i.target: i for i in self._store.open_incidents() if i.target in wanted}
        for target in wanted:
            if target in found:
                self._open[target] = found[target]
            else:
                self._open.pop(target, None)
        self._metrics.open_incidents.set(len(self._open))
        return list(found.values())

    def forget(self, target: str) -> None:
        """Stop tracking ``target``'s incident here, leaving it open in the store (another controller owns it now)."""
        self._open.pop(target, None)
        self._metrics.open_incidents.set(len(self._open))

    def open_for(self, target: str) -> Incident | None:
        """The open incident of ``target``, if any."""
        return self._open.get(target)

    def open_incidents(self) -> list[Incident]:
        """Every open incident."""
        return list(self._open.values())

    def on_fault(self, fault: Fault) -> tuple[Incident, bool]:
        """File a fault: into the target's open incident, or a new one. Returns (incident, new)."""
        current = self._open.get(fault.target)
        if current is not None:
            updated = replace(current, fault_count=current.fault_count + 1)
            self._save(updated)
            self._store.add_fault(fault, updated.id)
            self.event(updated, "signal", f"{fault.kind}: {_describe(fault)}", deduplicated=True)
            return updated, False
        incident = Incident(
            id=IncidentId(f"inc-{uuid.uuid4().hex[:10]}"),
            target=fault.target,
            kind=fault.kind,
            status=IncidentStatus.OPEN,
            priority=Priority.P3 if fault.preventive else _INITIAL_PRIORITY,
            opened_at=fault.detected_at,
            since=fault.since,
            preventive=fault.preventive,
            summary=f"{'preventive: ' if fault.preventive else ''}{fault.kind} on {fault.target}: {_describe(fault)}",
        )
        self._store.insert_incident(incident)
        self._store.add_fault(fault, incident.id)
        self._open[incident.target] = incident
        self._metrics.open_incidents.set(len(self._open))
        self._metrics.fault(fault.kind.value, fault.detected_at - fault.since)
        self.event(
            incident,
            "detected",
            incident.summary,
            fault_id=fault.id,
            mttd_ms=round(incident.mttd_s * 1000, 1),
            preventive=fault.preventive,
            evidence=dict(fault.evidence),
        )
        return incident, True

    def event(self, incident: Incident, kind: str, detail: str = "", **data: Any) -> None:
        """Append a timeline line (and log it, bound to the incident id)."""
        ev = TimelineEvent(self._clock.now(), kind, detail, data)
        self._store.add_event(incident.id, ev)
        log = get_logger(incident=incident.id, target=incident.target)
        getattr(log, _LEVELS.get(kind, "info"))(kind, detail=detail, **_loggable(data))
        if self._on_change is not None:
            self._on_change(incident, ev)

    def set_status(self, incident: Incident, status: IncidentStatus, *, priority: Priority | None = None) -> Incident:
        """Move an open incident to ``status`` (and priority); one no longer open here is left as it is."""
        current = self._tracked(incident)
        if current is None:
            return incident
        updated = replace(current, status=status, priority=current.priority if priority is None else priority)
        self._save(updated)
        return updated

    def _tracked(self, incident: Incident) -> Incident | None:
        """This controller's current copy of ``incident``, or None once it was resolved or handed over.

        A repair still running when its incident was resolved (the target recovered) or its
        target handed to another controller must not write it back: in memory it would
        reopen here, and in the store it would overwrite what the new owner wrote.
        """
        current = self._open.get(incident.target)
        return current if current is not None and current.id == incident.id else None

    def resolve(self, incident: Incident, *, healed_by: str, at: float | None = None) -> Incident:
        """Close the incident as recovered (verified healthy)."""
        current = self._open.pop(incident.target, incident)
        resolved = replace(current, status=IncidentStatus.RESOLVED, resolved_at=at or self._clock.now())
        self._store.update_incident(resolved)
        self._metrics.open_incidents.set(len(self._open))
        self._metrics.incident_closed(healed=current.status is not IncidentStatus.NEEDS_HUMAN, mttr_s=resolved.mttr_s)
        mttr = resolved.mttr_s or 0.0
        self.event(resolved, "resolved", f"healthy again ({healed_by})", mttr_ms=round(mttr * 1000, 1))
        return resolved

    def withdraw(self, incident: Incident, reason: str) -> Incident:
        """Close the incident unhealed: its target is gone (removed from the spec), there is nothing to heal."""
        current = self._open.pop(incident.target, incident)
        closed = replace(current, status=IncidentStatus.CLOSED, resolved_at=self._clock.now())
        self._store.update_incident(closed)
        self._metrics.open_incidents.set(len(self._open))
        self.event(closed, "closed", reason)
        return closed

    def escalate(
        self, incident: Incident, reason: str, *, priority: Priority = Priority.P1, rail: str | None = None
    ) -> Incident:
        """Hand the incident to a human: marked needs-human, priority raised (if it is still open here).

        ``rail``: the safety rail that stopped automation, kept on the escalation's timeline line.
        """
        current = self._tracked(incident)
        if current is None:
            return incident
        updated = self.set_status(current, IncidentStatus.NEEDS_HUMAN, priority=min(priority, current.priority))
        held = {} if rail is None else {"rail": rail}
        self.event(updated, "escalated", reason, priority=f"P{int(updated.priority)}", **held)
        if updated.priority != current.priority:  # every priority change is a priority line, with its reason
            before, after = f"P{int(current.priority)}", f"P{int(updated.priority)}"
            self.event(updated, "priority", f"{before} → {after} (escalated to a human): {reason}", priority=after)
        return updated

    def raise_priority(self, incident: Incident, priority: Priority, reason: str) -> Incident:
        """Raise (never lower) an open incident's priority, with a timeline note."""
        current = self._tracked(incident)
        if current is None or priority >= current.priority:
            return current or incident
        updated = self.set_status(current, current.status, priority=priority)
        # Like every other priority line, it says from what to what (the header showed P0, the line only why).
        change = f"P{int(current.priority)} → P{int(priority)}"
        self.event(updated, "priority", f"{change}: {reason}", priority=f"P{int(priority)}")
        return updated

    def set_priority(self, incident: Incident, priority: Priority, reason: str, **data: Any) -> Incident:
        """Set an open incident's priority (up or down) with a timeline note saying why."""
        current = self._tracked(incident)
        if current is None:
            return incident
        updated = self.set_status(current, current.status, priority=priority)
        self.event(updated, "priority", reason, priority=f"P{int(priority)}", **data)
        return updated

    def _save(self, incident: Incident) -> None:
        self._open[incident.target] = incident
        self._store.update_incident(incident)


def _describe(fault: Fault) -> str:
    detail = fault.evidence.get("detail")
    if detail:
        return str(detail)
    if "exit_code" in fault.evidence:
        return describe_exit(fault.evidence["exit_code"])
    return str(fault.kind)


def _loggable(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k not in {"event", "detail"}}


def describe_exit(code: object) -> str:
    """``exited with 3``, or ``killed by SIGKILL`` for a negative (signal) exit code."""
    if isinstance(code, int) and code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with {code}"
