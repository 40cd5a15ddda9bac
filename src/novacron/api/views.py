"""Read models shared by the API and the CLI: post-mortems and incident details from the store."""

from __future__ import annotations

import contextlib

from novacron.errors import ConfigError
from novacron.incidents.postmortem import ActionRecord as PostmortemAction
from novacron.incidents.postmortem import Postmortem, build_postmortem
from novacron.model import ActionStatus, Incident, Outcome, TimelineEvent
from novacron.settings import FlapPolicy, load_spec
from novacron.store import ActionRecord, Store

__all__ = ["acknowledged_by", "acknowledgement", "postmortem_for"]

_WORKED = (ActionStatus.VERIFIED, ActionStatus.APPLIED)


def _as_postmortem_action(rec: ActionRecord) -> PostmortemAction:
    """The executor's stored record, with an outcome when the action actually ran."""
    outcome = None
    if rec.started_at is not None and rec.finished_at is not None:
        outcome = Outcome(rec.action.id, rec.status in _WORKED, rec.started_at, rec.finished_at, rec.detail)
    return PostmortemAction(rec.action, rec.status.value, outcome)


def postmortem_for(store: Store, incident_id: str) -> Postmortem:
    """The post-mortem of ``incident_id`` from its record (NotFoundError if there is none)."""
    incident = store.incident(incident_id)
    timeline = store.timeline(incident_id)
    actions = [_as_postmortem_action(r) for r in reversed(store.actions(incident_id=incident_id, limit=1000))]
    evidence: dict[str, object] = {}
    faults = store.faults(incident_id)
    if faults:
        first = faults[0]
        evidence["first signal"] = f"{first['kind']} ({first['id']})"
        kinds = sorted({str(f["kind"]) for f in faults})
        evidence["signal kinds"] = ", ".join(kinds)
    return build_postmortem(incident, timeline, actions, evidence=evidence, related=_flap(store, incident, timeline))


def _flap(store: Store, incident: Incident, timeline: list[TimelineEvent]) -> list[Incident]:
    """The target's earlier incidents within the flap window, when this one was quarantined for flapping."""
    if not any(ev.kind == "escalated" and "flapping" in ev.detail for ev in timeline):
        return []
    window = FlapPolicy().window_s
    config = store.latest_config()
    if config is not None:
        with contextlib.suppress(ConfigError):  # an unreadable old version: the default window
            window = load_spec(config.body).policy.flap.window_s
    earliest = incident.opened_at - window
    earlier = [
        i
        for i in store.incidents(limit=1000)
        if i.target == incident.target and i.id != incident.id and earliest <= i.opened_at <= incident.opened_at
    ]
    return sorted(earlier, key=lambda i: i.opened_at)


def acknowledgement(store: Store, incident_id: str) -> TimelineEvent | None:
    """The incident's last acknowledgement on its timeline, if it has one."""
    for ev in reversed(store.timeline(incident_id)):
        if ev.kind == "acknowledged":
            return ev
    return None


def acknowledged_by(store: Store, incident_id: str) -> str | None:
    """Who last acknowledged the incident, from its timeline."""
    ev = acknowledgement(store, incident_id)
    return None if ev is None else str(ev.data.get("by", "")) or None
