"""Priority from impact, kept current: assessed when an incident opens, re-assessed as inputs change.

:class:`PriorityKeeper` listens to every incident's timeline. It scores an incident with
:func:`~novacron.incidents.priority.assess` from what the fleet shows now — the share of
the fleet with an open incident, how many targets depend on this one, whether the
incident's evidence says an SLO is breached, and whether automation already failed on
it — when it opens, when another incident opens or resolves (the share changes), when an
action on it fails and when it escalates. Every change is a ``priority`` line on the
timeline with the reasons. An incident that needs a human is never below P1, and a
priority raised by another rail (the blast-radius cap's P0) is never lowered by it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from novacron.incidents.lifecycle import IncidentManager
from novacron.incidents.priority import ImpactInput, PriorityDecision, assess, transitive_dependents
from novacron.model import ENDING_EVENTS, Incident, IncidentStatus, Priority, TimelineEvent

__all__ = ["PriorityKeeper"]

_FAILED = frozenset({"verification_failed", "action_failed", "rolled_back"})
_OWN = "assessed"  # marks the keeper's own timeline lines


class PriorityKeeper:
    """Keeps every open incident's priority equal to its assessed impact."""

    def __init__(self, incidents: IncidentManager, graph: Mapping[str, Sequence[str]]) -> None:
        self._incidents = incidents
        self._graph = dict(graph)
        self._names = frozenset(self._graph)
        self._dependents: dict[str, int] = {}  # per target: the graph is fixed, so counted once
        self._failed: set[str] = set()
        self._slo: set[str] = set()
        self._floor: dict[str, Priority] = {}

    def on_event(self, incident: Incident, event: TimelineEvent) -> None:
        """React to one timeline line: re-assess what it changed."""
        if event.data.get(_OWN):
            return
        if event.kind == "detected":
            if _slo_breached(event.data.get("evidence")):
                self._slo.add(incident.id)
            self.reassess(incident, "assessed at open", first=True)
            self.reassess_all(f"{incident.target} opened an incident", skip=incident.id)
        elif event.kind in ENDING_EVENTS:
            for name in (self._failed, self._slo):
                name.discard(incident.id)
            self._floor.pop(incident.id, None)
            ended = "recovered" if event.kind == "resolved" else "left the spec"
            self.reassess_all(f"{incident.target} {ended}")
        elif event.kind in _FAILED:
            self._failed.add(incident.id)
            self.reassess(incident, "automated repair failed")
        elif event.kind in ("escalated", "priority"):
            current = self._incidents.open_for(incident.target) or incident
            self._floor[incident.id] = min(self._floor.get(incident.id, Priority.P4), current.priority)
            if event.kind == "escalated":
                self._failed.add(incident.id)

    def reassess_all(self, why: str, *, skip: str | None = None) -> None:
        """Re-assess every open incident but ``skip`` (the fleet's share down changed).

        The share down is counted once for all of them: a burst of failures on a large
        fleet opens hundreds of incidents, each re-assessing every other one, and counting
        per incident made that quadratic in work per event (seconds of a blocked loop).
        """
        incidents = self._incidents.open_incidents()
        opened = self._opened(incidents)
        for incident in incidents:
            if incident.id != skip:
                self.reassess(incident, why, opened=opened)

    def reassess(
        self, incident: Incident, why: str, *, opened: frozenset[str] | None = None, first: bool = False
    ) -> Incident:
        """Assess ``incident`` now and record a change of priority, with its reasons.

        The ``first`` assessment (at open) is always recorded, as the incident's priority: the
        default it was filed with was never assessed, so it is no priority to change from.
        """
        current = self._incidents.open_for(incident.target)
        if current is None or current.id != incident.id:
            return incident
        decision = self.decide(current, opened=opened)
        priority = min(decision.priority, self._floor.get(current.id, Priority.P4))
        if current.status is IncidentStatus.NEEDS_HUMAN:
            priority = min(priority, Priority.P1)
        if first:
            detail = f"P{int(priority)} ({why}): {'; '.join(decision.reasons)}"
        elif priority == current.priority:
            return current
        else:
            detail = f"P{int(current.priority)} → P{int(priority)} ({why}): {'; '.join(decision.reasons)}"
        return self._incidents.set_priority(current, priority, detail, score=decision.score, **{_OWN: True})

    def decide(self, incident: Incident, *, opened: frozenset[str] | None = None) -> PriorityDecision:
        """The priority ``incident``'s impact calls for now (``opened``: the fleet's targets with an incident)."""
        if opened is None:
            opened = self._opened(self._incidents.open_incidents())
        affected = len(opened) + int(incident.target in self._names and incident.target not in opened)
        fleet = max(1, len(self._graph))
        impact = ImpactInput(
            affected=min(affected or 1, fleet),
            fleet_size=fleet,
            dependents=self._dependents_of(incident.target),
            slo_breached=incident.id in self._slo,
            automation_failed=incident.id in self._failed or incident.status is IncidentStatus.NEEDS_HUMAN,
            preventive=incident.preventive,
        )
        return assess(impact)

    def _opened(self, incidents: Sequence[Incident]) -> frozenset[str]:
        """The fleet's targets with an open incident that is not only a forecast."""
        return frozenset(i.target for i in incidents if not i.preventive and i.target in self._names)

    def _dependents_of(self, target: str) -> int:
        count = self._dependents.get(target)
        if count is None:
            count = self._dependents[target] = len(transitive_dependents(self._graph, [target]))
        return count


def _slo_breached(evidence: object) -> bool:
    if not isinstance(evidence, Mapping):
        return False
    labels = evidence.get("labels")
    return bool(evidence.get("slo_breached")) or (isinstance(labels, Mapping) and "slo" in labels)
