"""What operators ask of a target beyond its health: restarts so far and the last fault seen.

The controller feeds the ledger (replica starts, incident timeline events) and reads it
when it publishes status; the counts are carried over from the previous controller's
last status rows, so a restarted controller does not forget a flapping target's history.
It also turns the controller's views into the per-target Prometheus sample.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from novacron.model import Health, Incident, IncidentStatus, TimelineEvent
from novacron.store import TargetStatusRow
from novacron.telemetry import FleetSample, TargetSample

if TYPE_CHECKING:
    from novacron.runtime.controller import TargetView

__all__ = ["TargetLedger", "fleet_sample", "state_word"]


class TargetLedger:
    """Restarts and last faults per target."""

    def __init__(self, targets: Iterable[str]) -> None:
        self._targets = set(targets)
        self._started: set[tuple[str, int]] = set()  # replicas started at least once: the next start is a restart
        self._restarts: dict[str, int] = {}
        self._last_fault: dict[str, dict[str, Any]] = {}

    def load(self, rows: Iterable[TargetStatusRow]) -> None:
        """Carry restart counts and last faults over from the previous controller's status rows."""
        for row in rows:
            self._restarts[row.target] = row.restarts
            if row.last_fault is not None:
                self._last_fault[row.target] = dict(row.last_fault)

    def add(self, targets: Iterable[str]) -> None:
        """Targets a reloaded spec added: their faults are remembered too."""
        self._targets.update(targets)

    def remove(self, target: str) -> None:
        """A target removed from the spec: one added again under its name has no restarts or faults yet."""
        self._targets.discard(target)
        self._started = {started for started in self._started if started[0] != target}
        self._restarts.pop(target, None)
        self._last_fault.pop(target, None)

    def adopted(self, target: str, replica: int) -> None:
        """A replica a previous controller started: its next start is a restart."""
        self._started.add((target, replica))

    def started(self, target: str, replica: int) -> None:
        """A replica was spawned; every start after its first counts as a restart."""
        if (target, replica) in self._started:
            self._restarts[target] = self._restarts.get(target, 0) + 1
        self._started.add((target, replica))

    def on_event(self, incident: Incident, event: TimelineEvent) -> None:
        """An incident listener: remember each fleet target's newest fault."""
        if event.kind not in ("detected", "signal") or incident.target not in self._targets:
            return
        kind = incident.kind.value if event.kind == "detected" else event.detail.partition(":")[0]
        self._last_fault[incident.target] = {
            "at": event.time,
            "kind": kind,
            "detail": event.detail,
            "incident": incident.id,
        }

    def restarts(self, target: str) -> int:
        """Replica restarts of ``target`` so far."""
        return self._restarts.get(target, 0)

    def last_fault(self, target: str) -> dict[str, Any] | None:
        """``{"at", "kind", "detail", "incident"}`` of the newest fault, if any."""
        return self._last_fault.get(target)


def state_word(health: Health, incident: Incident | None, *, remediating: bool, quarantined: bool = False) -> str:
    """``quarantined`` while automation is held off, ``healing`` while an action works, else its health."""
    if quarantined:
        return "quarantined"
    mitigating = incident is not None and incident.status is IncidentStatus.MITIGATING
    return "healing" if mitigating or remediating else health.value


def fleet_sample(views: Sequence[TargetView], quarantined: Iterable[str], incidents: Iterable[Incident]) -> FleetSample:
    """The per-target and per-priority Prometheus sample from the controller's status views."""
    held = set(quarantined)
    targets = [
        TargetSample(
            v.target,
            v.health is Health.HEALTHY,
            v.restarts,
            v.running,
            v.desired,
            v.target in held,
            v.state == "healing",
            quarantined_until=v.quarantined_until,
        )
        for v in views
    ]
    by_priority: dict[str, int] = {}
    needs_human = 0
    for inc in incidents:
        prio = f"P{int(inc.priority)}"
        by_priority[prio] = by_priority.get(prio, 0) + 1
        needs_human += inc.status is IncidentStatus.NEEDS_HUMAN
    return FleetSample(targets, by_priority, needs_human)
