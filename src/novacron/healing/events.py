"""Executor events: one typed record per action transition, and the bus that carries them.

The executor states what happened to an action (planned, gated, applying, applied,
verified, failed, rolled back, …) once, as an :class:`ActionEvent`; the incident timeline,
the audit trail, the metrics and the safety gate each subscribe and keep their own books
(:mod:`novacron.healing.recorders`). The store's action row is the one write the executor
still makes itself, in line, because an idempotency key must be durable before the action
is applied.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from novacron.healing.safety import Decision
from novacron.model import EMPTY, Action, ActionStatus, Incident, Outcome

__all__ = ["ActionEvent", "ActionEventBus", "ActionPhase", "Subscriber"]


class ActionPhase(enum.StrEnum):
    """Where an action went."""

    PLANNED = "planned"  # a new idempotency key reached the executor
    GATED = "gated"  # the safety gate decided (allow, defer, deny, dry run, approval)
    AWAITING_APPROVAL = "awaiting_approval"
    APPROVAL = "approval"  # a human approved or rejected it
    APPLYING = "applying"  # handed to the actuator
    APPLIED = "applied"  # the actuator reported success; verification follows
    VERIFIED = "verified"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"
    VETOED = "vetoed"  # an advisor refused it before it was applied
    REFUSED = "refused"  # the actuator cannot carry it out on that target (no load balancer, no cgroup)
    RECONCILED = "reconciled"  # found in flight after a restart and judged, never re-applied


@dataclass(frozen=True, slots=True)
class ActionEvent:
    """One transition of one action.

    ``status`` is the action's stored status after the transition (None while it is only
    planned or deferred); ``decision`` the gate's, once made; ``outcome`` the actuator's,
    once applied. ``healthy`` is True when the target was proven healthy by verification.
    """

    phase: ActionPhase
    action: Action
    time: float
    detail: str = ""
    incident: Incident | None = None
    status: ActionStatus | None = None
    decision: Decision | None = None
    outcome: Outcome | None = None
    actor: str = ""
    healthy: bool = False
    data: Mapping[str, object] = field(default_factory=lambda: EMPTY)

    @property
    def by(self) -> str:
        """Who the event is attributed to: an explicit actor, else whoever requested the action."""
        return self.actor or self.action.requested_by


Subscriber = Callable[[ActionEvent], None]


class ActionEventBus:
    """Delivers every event to every subscriber, in subscription order, synchronously.

    Synchronous on purpose: a timeline line or an audit row must be written before the
    executor moves on, exactly as when it wrote them itself.
    """

    def __init__(self, subscribers: list[Subscriber] | None = None) -> None:
        self.subscribers: list[Subscriber] = list(subscribers or [])

    def subscribe(self, subscriber: Subscriber) -> None:
        """Add a consumer."""
        self.subscribers.append(subscriber)

    def emit(self, event: ActionEvent) -> None:
        """Hand ``event`` to every consumer."""
        for subscriber in self.subscribers:
            subscriber(event)
