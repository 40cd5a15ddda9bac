"""The consumers of executor events: incident timeline, audit trail, metrics and the safety gate.

Each keeps one set of books from the same :class:`~novacron.healing.events.ActionEvent`
stream, so what an action did is stated once (by the executor) and recorded four ways.
"""

from __future__ import annotations

from novacron.clock import Clock
from novacron.healing.events import ActionEvent, ActionEventBus, ActionPhase
from novacron.healing.safety import SafetyGate
from novacron.incidents.lifecycle import IncidentManager
from novacron.model import ActionStatus
from novacron.store import Store
from novacron.telemetry import Metrics

__all__ = ["AuditRecorder", "GateRecorder", "MetricsRecorder", "TimelineRecorder", "standard_bus"]

_FINISHED = (ActionPhase.VERIFIED, ActionPhase.FAILED, ActionPhase.ROLLED_BACK)
_UNAPPLIED = (ActionStatus.BLOCKED, ActionStatus.DRY_RUN)


class TimelineRecorder:
    """Writes the action's story onto its incident's timeline."""

    def __init__(self, incidents: IncidentManager) -> None:
        self._incidents = incidents

    def __call__(self, ev: ActionEvent) -> None:
        """Record ``ev`` on the incident's timeline (if it belongs to one)."""
        if ev.incident is None:
            return
        line = self._line(ev)
        if line is not None:
            kind, detail, data = line
            self._incidents.event(ev.incident, kind, detail, **data)

    @staticmethod
    def _line(ev: ActionEvent) -> tuple[str, str, dict[str, object]] | None:
        a = ev.action
        ref: dict[str, object] = {"action_id": a.id}
        if ev.phase is ActionPhase.GATED and ev.status in _UNAPPLIED and ev.decision is not None:
            word = "would" if ev.status is ActionStatus.DRY_RUN else "blocked:"
            return ev.status.value, f"{word} {a.kind} {a.target} — {ev.decision.reason}", {"rail": ev.decision.rail}
        if ev.phase is ActionPhase.AWAITING_APPROVAL:
            return "approval_requested", f"{a.kind} ({a.risk.label} risk)", ref
        if ev.phase is ActionPhase.APPROVAL:
            return "approval", ev.detail, ref
        if ev.phase is ActionPhase.APPLYING:
            return "action_started", f"{a.kind} {a.target}", ref
        if ev.phase is ActionPhase.APPLIED:
            if ev.outcome is not None and "restarts" in ev.outcome.data:
                # How each replica came back (a guest: warm restore, cold start or reset), kept on the timeline.
                return "action_finished", ev.detail, {**ref, "restarts": ev.outcome.data["restarts"]}
            return "action_finished", ev.detail, ref
        if ev.phase is ActionPhase.RECONCILED:
            return "reconciled", f"{a.kind} {a.id}: {ev.detail}", ref
        if ev.phase is ActionPhase.REFUSED:
            return "action_refused", f"{a.kind} {a.target} {ev.detail}", ref
        if ev.phase in _FINISHED:
            kind = {ActionPhase.VERIFIED: "verified", ActionPhase.ROLLED_BACK: "rolled_back"}.get(
                ev.phase, "verification_failed"
            )
            if ev.phase is ActionPhase.FAILED and (ev.outcome is None or not ev.outcome.ok):
                kind = "action_failed"
            data = {**ref, **ev.data}
            if ev.outcome is not None:
                data["elapsed_ms"] = round((ev.time - ev.outcome.started_at) * 1000, 1)
            return kind, f"{a.kind}: {ev.detail}", data
        return None


class AuditRecorder:
    """Appends the decisions and results to the audit trail."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    def __call__(self, ev: ActionEvent) -> None:
        """Audit ``ev`` when it is a decision or a result."""
        result = self._result(ev)
        if result is None:
            return
        a = ev.action
        self._store.audit(
            now=self._clock.now(),
            actor=ev.by,
            verb=f"action.{a.kind}",
            subject=a.target,
            result=result,
            action_id=a.id,
            key=a.idempotency_key,
            detail=ev.detail,
        )

    @staticmethod
    def _result(ev: ActionEvent) -> str | None:
        if ev.phase is ActionPhase.GATED and ev.decision is not None:
            return ev.decision.verdict.value
        if ev.phase is ActionPhase.APPROVAL:
            return "withdrawn" if ev.data.get("withdrawn") else "approved" if ev.data.get("approved") else "rejected"
        if ev.phase is ActionPhase.VETOED:
            return "vetoed"
        if ev.phase is ActionPhase.REFUSED:
            return "refused"
        if ev.phase in (*_FINISHED, ActionPhase.RECONCILED) and ev.status is not None:
            return ev.status.value
        return None


class MetricsRecorder:
    """Counts action results by kind."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def __call__(self, ev: ActionEvent) -> None:
        """Count a finished, refused or vetoed action."""
        kind = ev.action.kind.value
        if ev.phase in (ActionPhase.VETOED, ActionPhase.REFUSED):
            self._metrics.action(kind, ev.phase.value)
        elif (ev.phase in _FINISHED and ev.status is not None) or (
            ev.phase is ActionPhase.GATED and ev.status in _UNAPPLIED and ev.status is not None
        ):
            self._metrics.action(kind, ev.status.value)


class GateRecorder:
    """Feeds the rails: an applied action counts against rate limit and backoff; a proven repair resets backoff."""

    def __init__(self, gate: SafetyGate) -> None:
        self._gate = gate

    def __call__(self, ev: ActionEvent) -> None:
        """Update the gate's state from ``ev``."""
        if ev.phase is ActionPhase.APPLYING:
            self._gate.record_action(ev.action)
        elif ev.phase is ActionPhase.VERIFIED and ev.healthy:
            self._gate.record_success(ev.action.target)


def standard_bus(
    *, incidents: IncidentManager, store: Store, clock: Clock, metrics: Metrics, gate: SafetyGate
) -> ActionEventBus:
    """The bus every controller runs: timeline, audit, metrics and gate, in that order."""
    return ActionEventBus(
        [TimelineRecorder(incidents), AuditRecorder(store, clock), MetricsRecorder(metrics), GateRecorder(gate)]
    )
