"""The action catalog: risk, inverse and verification for every action kind.

Risk decides approval (policy ``approval_required``); the inverse is what a failed,
unverified action is rolled back with, where undoing makes sense (a restart has nothing
to undo; a scale-out that did not help is scaled back in).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from novacron.errors import InputError
from novacron.model import Action, ActionId, ActionKind, IncidentId, RiskLevel, TargetId

__all__ = ["CATALOG", "MITIGATIONS", "ActionSpec", "Verification", "inverse_of", "new_action"]


class Verification:
    """How an action is verified."""

    HEALTHY = "healthy"  # every selected replica passes its checks again within the deadline
    NONE = "none"  # nothing to verify (escalate, stop)


@dataclass(frozen=True, slots=True)
class ActionSpec:
    """Static facts about one action kind."""

    kind: ActionKind
    risk: RiskLevel
    inverse: ActionKind | None
    verification: str
    summary: str


CATALOG: Mapping[ActionKind, ActionSpec] = {
    s.kind: s
    for s in (
        ActionSpec(ActionKind.RESTART, RiskLevel.LOW, None, Verification.HEALTHY, "graceful stop, then start"),
        ActionSpec(ActionKind.START, RiskLevel.LOW, ActionKind.STOP, Verification.HEALTHY, "start missing replicas"),
        ActionSpec(ActionKind.STOP, RiskLevel.MEDIUM, ActionKind.START, Verification.NONE, "graceful stop"),
        ActionSpec(ActionKind.REPLACE, RiskLevel.MEDIUM, None, Verification.HEALTHY, "SIGKILL, then a fresh start"),
        ActionSpec(ActionKind.SCALE_OUT, RiskLevel.LOW, ActionKind.SCALE_IN, Verification.HEALTHY, "add replicas"),
        ActionSpec(
            ActionKind.SCALE_IN,
            RiskLevel.MEDIUM,
            ActionKind.SCALE_OUT,
            Verification.HEALTHY,
            "remove replicas",
        ),
        ActionSpec(
            ActionKind.CONFIG_ROLLBACK,
            RiskLevel.HIGH,
            ActionKind.CONFIG_ROLLBACK,
            Verification.HEALTHY,
            "run the previous spec version",
        ),
        ActionSpec(
            ActionKind.CONFIG_CHANGE,
            RiskLevel.MEDIUM,
            ActionKind.CONFIG_ROLLBACK,
            Verification.NONE,
            "write a new spec version of a target (a tuned configuration; rolled back to the previous one)",
        ),
        ActionSpec(ActionKind.CLEANUP, RiskLevel.LOW, None, Verification.HEALTHY, "empty a declared scratch path"),
        ActionSpec(ActionKind.ESCALATE, RiskLevel.LOW, None, Verification.NONE, "hand over to a human"),
        ActionSpec(
            ActionKind.WAIT, RiskLevel.LOW, None, Verification.HEALTHY, "touch nothing; heal within the deadline"
        ),
        ActionSpec(
            ActionKind.DEPLOY_PATCH,
            RiskLevel.HIGH,
            ActionKind.CONFIG_ROLLBACK,
            Verification.HEALTHY,
            "run a validated fix branch's code (rolled back to the previous target spec)",
        ),
        ActionSpec(
            ActionKind.OPEN_CIRCUIT, RiskLevel.MEDIUM, ActionKind.CLOSE_CIRCUIT, Verification.NONE, "route to fallback"
        ),
        ActionSpec(
            ActionKind.CLOSE_CIRCUIT, RiskLevel.MEDIUM, ActionKind.OPEN_CIRCUIT, Verification.NONE, "route back"
        ),
        # Traffic actions land on the load balancer, which reads its state back before it
        # reports success (the change is in force, or the action failed): nothing is left
        # for the health check to verify, and each one is undone by its inverse.
        ActionSpec(ActionKind.REROUTE, RiskLevel.MEDIUM, ActionKind.REROUTE, Verification.NONE, "set server weights"),
        ActionSpec(
            ActionKind.DRAIN, RiskLevel.LOW, ActionKind.UNDRAIN, Verification.NONE, "no new requests to a server"
        ),
        ActionSpec(
            ActionKind.UNDRAIN, RiskLevel.LOW, ActionKind.DRAIN, Verification.NONE, "a drained server serves again"
        ),
        ActionSpec(
            ActionKind.PROMOTE,
            RiskLevel.HIGH,
            ActionKind.REROUTE,
            Verification.NONE,
            "an experiment's variant takes all traffic (rolled back to the weights before)",
        ),
        # A migration is undone by migrating back (the inverse's params swap the hosts), a
        # resize by resizing back to what the actuator recorded before it.
        ActionSpec(
            ActionKind.VM_MIGRATE,
            RiskLevel.MEDIUM,
            ActionKind.VM_MIGRATE,
            Verification.HEALTHY,
            "live-migrate a guest to another host",
        ),
        ActionSpec(ActionKind.VM_SNAPSHOT, RiskLevel.LOW, None, Verification.HEALTHY, "save a guest's whole state"),
        ActionSpec(
            ActionKind.VM_ROLLBACK, RiskLevel.HIGH, None, Verification.HEALTHY, "run a guest from a saved state"
        ),
        ActionSpec(
            ActionKind.VM_RESIZE,
            RiskLevel.MEDIUM,
            ActionKind.VM_RESIZE,
            Verification.HEALTHY,
            "change a guest's memory (balloon) or vCPUs (hot-plug)",
        ),
        # Limits that starve a process are as disruptive as a restart; the inverse writes
        # back the limits the actuator read before it changed them.
        ActionSpec(
            ActionKind.REALLOCATE,
            RiskLevel.MEDIUM,
            ActionKind.REALLOCATE,
            Verification.HEALTHY,
            "set a process target's CPU and memory limits (cgroups)",
        ),
    )
}

MITIGATIONS = frozenset({ActionKind.DRAIN})
"""Steps that shield users without repairing the target: a healer goes on after them and
undoes them (their inverse) once the incident is resolved."""


def new_action(
    kind: ActionKind,
    target: TargetId,
    *,
    key: str,
    incident_id: IncidentId | None = None,
    params: Mapping[str, Any] | None = None,
    reason: str = "",
    requested_by: str = "controller",
    inverse_of: ActionId | None = None,
) -> Action:
    """Build an action with the catalog's risk level and a fresh id."""
    if kind not in CATALOG:
        raise InputError(f"unknown action {kind!r}", where="action")
    return Action(
        id=ActionId(f"act-{uuid.uuid4().hex[:12]}"),
        kind=kind,
        target=target,
        risk=CATALOG[kind].risk,
        idempotency_key=key,
        incident_id=incident_id,
        params=dict(params or {}),
        reason=reason,
        requested_by=requested_by,
        inverse_of=inverse_of,
    )


def _swap_config(params: Mapping[str, Any]) -> dict[str, Any]:
    """A config rollback is undone by rolling forward to the version it replaced."""
    return {
        "target_spec": params.get("from_target_spec"),
        "version": params.get("from_version"),
        "from_target_spec": params.get("target_spec"),
        "from_version": params.get("version"),
    }


def _swap_weights(params: Mapping[str, Any]) -> dict[str, Any]:
    """A reroute (or promotion) is undone by setting back the weights it replaced."""
    return {**params, "weights": params.get("from_weights"), "from_weights": params.get("weights")}


def _swap_vm(params: Mapping[str, Any]) -> dict[str, Any]:
    """A migration or resize is undone by doing it back: ``to``/``from`` swap places."""
    swapped = {k: v for k, v in params.items() if k not in {"to", "from"}}
    if "from" in params:
        swapped["to"] = params["from"]
    if "to" in params:
        swapped["from"] = params["to"]
    return swapped


def inverse_of(action: Action, *, params: Mapping[str, Any] | None = None) -> Action | None:
    """The action that undoes ``action``, or None if it has no inverse."""
    inverse = CATALOG[action.kind].inverse
    if inverse is None:
        return None
    if params is None:
        if action.kind in (ActionKind.CONFIG_ROLLBACK, ActionKind.DEPLOY_PATCH, ActionKind.CONFIG_CHANGE):
            params = _swap_config(action.params)
        elif action.kind in (ActionKind.REROUTE, ActionKind.PROMOTE):
            params = _swap_weights(action.params)
        elif action.kind is ActionKind.VM_MIGRATE:
            params = _swap_vm(action.params)
        else:
            params = action.params
    return new_action(
        inverse,
        action.target,
        key=f"{action.idempotency_key}/rollback",
        incident_id=action.incident_id,
        params=params,
        reason=f"roll back {action.kind} {action.id}",
        requested_by=action.requested_by,
        inverse_of=action.id,
    )
