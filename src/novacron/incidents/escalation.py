"""Escalation policies: who is told, after how long, how often, until someone acknowledges.

A policy is a list of levels. Level *i* pages its receivers ``after_s`` seconds after
escalation starts, then every ``repeat_every_s`` up to ``max_repeats`` more times; later
levels fire on their own schedule, so an unanswered page widens the circle. An
acknowledgement or resolution stops all further pages. :func:`pages_due` is the pure
schedule ("what should have been sent by now"); :class:`Escalator` remembers what was
already sent per incident and turns new pages into notifications for
:class:`~novacron.notify.Notifier`, plus acknowledge/resolve follow-ups to everyone paged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from novacron.errors import ConfigError
from novacron.model import Incident, IncidentStatus, Priority
from novacron.notify import Event, Notification, Notifier, Severity
from novacron.settings import EscalationLevel, EscalationPolicy

__all__ = [
    "EscalationLevel",
    "EscalationPolicy",
    "EscalationState",
    "Escalator",
    "Page",
    "applies",
    "pages_due",
    "parse_policy",
    "severity_for",
]


def applies(policy: EscalationPolicy, incident: Incident) -> bool:
    """Whether ``policy`` pages anyone for ``incident`` now."""
    if not incident.is_open:
        return False
    if policy.targets and incident.target not in policy.targets:
        return False
    return incident.status is IncidentStatus.NEEDS_HUMAN or incident.priority in policy.priorities


def parse_policy(data: Any, *, source: str = "escalation") -> EscalationPolicy:
    """Validate a mapping (e.g. from YAML) into a policy; errors name the field."""
    try:
        return EscalationPolicy.model_validate(data)
    except ValidationError as exc:
        msgs = [f"{'.'.join(str(p) for p in e['loc']) or 'policy'}: {e['msg']}" for e in exc.errors()]
        raise ConfigError("; ".join(msgs), where=source) from exc


@dataclass(frozen=True, slots=True)
class Page:
    """One due page: level, repeat number (0 = first), receivers and when it fell due."""

    level: int
    repeat: int
    receivers: tuple[str, ...]
    due_at: float

    @property
    def key(self) -> str:
        """Identity within one incident's escalation."""
        return f"{self.level}.{self.repeat}"


def pages_due(policy: EscalationPolicy, *, started_at: float, now: float) -> list[Page]:
    """Every page that falls due in [started_at, now], in time order."""
    until = now
    out: list[Page] = []
    for i, level in enumerate(policy.levels):
        first = started_at + level.after_s
        repeats = level.max_repeats if level.repeat_every_s is not None else 0
        for r in range(repeats + 1):
            due = first + r * (level.repeat_every_s or 0.0)
            if due > until:
                break
            out.append(Page(i, r, tuple(level.notify), due))
    return sorted(out, key=lambda p: (p.due_at, p.level, p.repeat))


_SEVERITY: Mapping[Priority, Severity] = {
    Priority.P0: "critical",
    Priority.P1: "error",
    Priority.P2: "warning",
    Priority.P3: "info",
    Priority.P4: "info",
}


def severity_for(priority: Priority) -> Severity:
    """Notification severity for an incident priority."""
    return _SEVERITY[priority]


@dataclass
class _State:
    started_at: float
    sent: set[str] = field(default_factory=set)
    paged: set[str] = field(default_factory=set)
    acked_at: float | None = None


@dataclass(frozen=True, slots=True)
class EscalationState:
    """What an :class:`Escalator` knows about one incident, to store and restore on restart.

    Without it a restarted controller would page everyone again for pages already sent.
    """

    started_at: float
    sent: frozenset[str] = frozenset()
    paged: frozenset[str] = frozenset()
    acked_at: float | None = None


class Escalator:
    """Per-incident escalation state; :meth:`poll` regularly, :meth:`acknowledge` / :meth:`resolve` on change.

    With a ``notifier``, due pages are queued for delivery directly; either way the
    methods return what was (or should be) sent, so callers can record it on the timeline.
    """

    def __init__(self, policy: EscalationPolicy, notifier: Notifier | None = None) -> None:
        if notifier is not None:
            for i, level in enumerate(policy.levels):
                missing = [name for name in level.notify if name not in notifier.channels]
                if missing:
                    raise ConfigError(f"unknown channel(s) {', '.join(missing)}", where=f"levels.{i}.notify")
        self.policy = policy
        self.notifier = notifier
        self._states: dict[str, _State] = {}

    def state(self, incident_id: str) -> EscalationState | None:
        """A snapshot of one incident's escalation (None if it never escalated or is resolved)."""
        s = self._states.get(incident_id)
        if s is None:
            return None
        return EscalationState(s.started_at, frozenset(s.sent), frozenset(s.paged), s.acked_at)

    def restore(self, incident_id: str, state: EscalationState) -> None:
        """Resume an incident's escalation from a snapshot taken before a restart."""
        self._states[incident_id] = _State(state.started_at, set(state.sent), set(state.paged), state.acked_at)

    def poll(self, incident: Incident, now: float) -> list[Page]:
        """Pages newly due for ``incident`` (none if it does not escalate or is acknowledged)."""
        if not applies(self.policy, incident):
            return []
        state = self._states.setdefault(incident.id, _State(started_at=now))
        if state.acked_at is not None:
            # A repeat that fell due between the last poll and the acknowledgement is not sent:
            # after a human owns the incident, nobody is paged about it again.
            return []
        due = pages_due(self.policy, started_at=state.started_at, now=now)
        missed = [p for p in due if p.key not in state.sent]
        state.sent.update(p.key for p in missed)
        # Repeats of a level that fell due unpolled (a controller down, a stalled loop) are one
        # page, the newest: a burst of the same page tells the receivers nothing more.
        newest = {p.level: p for p in missed}  # pages_due is in time order: the last one wins
        new = [p for p in missed if newest[p.level] is p]
        for page in new:
            state.paged.update(page.receivers)
            extra = {"level": page.level, "repeat": page.repeat}
            self._send(incident, "trigger", page.receivers, now, extra, key=f"page/{page.key}")
        return new

    def acknowledge(self, incident: Incident, now: float, by: str = "") -> list[str]:
        """Stop paging; tell everyone already paged. Returns those receivers."""
        state = self._states.get(incident.id)
        if state is None:  # acknowledged before anyone was paged: nobody will be
            self._states[incident.id] = _State(started_at=now, acked_at=now)
            return []
        if state.acked_at is not None:
            return []
        state.acked_at = now
        receivers = sorted(state.paged)
        self._send(incident, "acknowledge", tuple(receivers), now, {"by": by} if by else {}, key="acknowledge")
        return receivers

    def resolve(self, incident: Incident, now: float) -> list[str]:
        """Close the escalation; tell everyone already paged. Returns those receivers."""
        state = self._states.pop(incident.id, None)
        if state is None:
            return []
        receivers = sorted(state.paged)
        self._send(incident, "resolve", tuple(receivers), now, {}, key="resolve")
        return receivers

    def _send(
        self,
        incident: Incident,
        event: Event,
        receivers: tuple[str, ...],
        now: float,
        extra: Mapping[str, Any],
        *,
        key: str,
    ) -> None:
        """Queue one message; its ``key`` (incident, policy, which page) is the same in every run,
        so a page queued just before a crash is not queued again after the restart."""
        if self.notifier is None or not receivers:
            return
        note = Notification(
            dedup_key=f"novacron-{incident.id}",
            event=event,
            summary=incident.summary or f"{incident.kind.value} on {incident.target}",
            source=incident.target,
            time=now,
            severity=severity_for(incident.priority),
            details={"incident": incident.id, "priority": incident.priority.name, **extra},
            key=f"{incident.id}/{self.policy.name}/{key}",
        )
        self.notifier.notify(note, list(receivers))
