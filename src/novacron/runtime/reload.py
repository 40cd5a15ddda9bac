"""Reloading the fleet spec in place: what changed, and whether it can change without a restart.

``novacron run`` re-reads its spec file on SIGHUP or ``novacron reload``. This module
compares the spec in force with the one read and says what to do: targets added (start
them), removed (stop them), changed (restart them with the new definition), rechecked
(only how the controller watches them changed: checks, dependencies, labels, start
timeout; their processes keep running and the checks are re-armed), unchanged (leave
them alone), and whether the policy (the safety rails) changed. It is pure: the
controller applies the plan (:meth:`~novacron.runtime.controller.Controller.reload`).

What a running controller cannot take in place is refused, naming each field, and then
nothing is applied: the store, the listeners, node and HA settings, paging, runbooks, the
twin, agents, learning, experiments, hosts and cgroups are all wired once at start. Of the
targets, only ``kind: process`` ones without a ``frontend`` (HAProxy) or ``metrics`` block
(the metric judges) can be added, removed or changed; the rest are built once as well.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from novacron.errors import InputError
from novacron.settings import FleetSpec, TargetSpec

__all__ = ["RELOADABLE", "ReloadPlan", "ReloadReport", "plan_reload"]

RELOADABLE = ("targets", "policy")  # the top-level fields a reload applies; every other one is refused
# Parts of a target whose machinery is built once at start (HAProxy, metric judges).
_FIXED_TARGET_PARTS = ("frontend", "metrics")
# Parts of a target only the controller reads (its checks, dependency graph, runbook labels,
# how long a start may take): a change to them alone re-arms the checks, the process runs on.
_SUPERVISION = ("checks", "depends_on", "labels", "start_timeout_s")


@dataclass(frozen=True, slots=True)
class ReloadPlan:
    """What a reload changes, target by target."""

    spec: FleetSpec  # the spec read
    added: list[TargetSpec] = field(default_factory=list)
    removed: list[TargetSpec] = field(default_factory=list)
    changed: list[TargetSpec] = field(default_factory=list)  # the new definitions
    rechecked: list[TargetSpec] = field(default_factory=list)  # new definitions differing only in _SUPERVISION
    unchanged: list[str] = field(default_factory=list)
    policy_changed: bool = False

    @property
    def empty(self) -> bool:
        """Nothing to apply: the spec read is the one in force."""
        return not (self.added or self.removed or self.changed or self.rechecked or self.policy_changed)


@dataclass(frozen=True, slots=True)
class ReloadReport:
    """What a reload applied: the spec version now in force and each target's fate."""

    version: int
    added: list[str]
    removed: list[str]
    changed: list[str]
    rechecked: list[str]
    unchanged: list[str]
    policy_changed: bool
    failed: dict[str, str] = field(default_factory=dict)  # target → why its start or restart was not verified

    @classmethod
    def of(cls, plan: ReloadPlan, version: int, *, failed: dict[str, str] | None = None) -> ReloadReport:
        """The report of ``plan`` applied as spec ``version``."""
        return cls(
            version,
            added=[t.name for t in plan.added],
            removed=[t.name for t in plan.removed],
            changed=[t.name for t in plan.changed],
            rechecked=[t.name for t in plan.rechecked],
            unchanged=list(plan.unchanged),
            policy_changed=plan.policy_changed,
            failed=dict(failed or {}),
        )

    def as_dict(self) -> dict[str, Any]:
        """As JSON (the API's answer, the audit entry, the log line)."""
        return dataclasses.asdict(self)


def plan_reload(current: FleetSpec, new: FleetSpec, *, source: str) -> ReloadPlan:
    """The difference between the spec in force and ``new``; InputError naming every field that cannot change."""
    old_targets = {t.name: t for t in current.targets}
    new_targets = {t.name: t for t in new.targets}
    edited = [t for name, t in new_targets.items() if name in old_targets and old_targets[name] != t]
    watched_only = {t.name for t in edited if _supervision_only(old_targets[t.name], t)}
    plan = ReloadPlan(
        new,
        added=[t for name, t in new_targets.items() if name not in old_targets],
        removed=[t for name, t in old_targets.items() if name not in new_targets],
        changed=[t for t in edited if t.name not in watched_only],
        rechecked=[t for t in edited if t.name in watched_only],
        unchanged=[name for name, t in new_targets.items() if old_targets.get(name) == t],
        policy_changed=current.policy != new.policy,
    )
    refused = _fixed_fields(current, new) + _fixed_targets(plan, old_targets)
    if refused:
        raise InputError(
            f"cannot change in place: {', '.join(refused)} (restart novacron run to apply them); "
            "nothing was applied, the running spec is unchanged",
            where=source,
        )
    return plan


def _supervision_only(old: TargetSpec, new: TargetSpec) -> bool:
    """Whether ``new`` differs from ``old`` only in what the controller reads, not the process."""
    return old.model_copy(update={f: getattr(new, f) for f in _SUPERVISION}) == new


def _fixed_fields(current: FleetSpec, new: FleetSpec) -> list[str]:
    """Top-level fields (``controller`` by its own fields) that differ and are wired once at start."""
    out: list[str] = []
    for name in FleetSpec.model_fields:
        if name in RELOADABLE or getattr(current, name) == getattr(new, name):
            continue
        if name == "controller":
            ctl_old, ctl_new = current.controller, new.controller
            out += [f"controller.{f}" for f in type(ctl_old).model_fields if getattr(ctl_old, f) != getattr(ctl_new, f)]
        else:
            out.append(name)
    return out


def _fixed_targets(plan: ReloadPlan, old: dict[str, TargetSpec]) -> list[str]:
    """Targets added, removed or changed that a running controller cannot start, stop or rebuild."""
    out: list[str] = []
    touched = [*plan.added, *plan.removed, *plan.changed, *plan.rechecked]
    for tspec in touched:
        before = old.get(tspec.name)
        for version in (before, tspec) if before is not tspec else (tspec,):
            if version is None:
                continue
            if version.kind != "process":
                out.append(f"targets[{tspec.name}].kind ({version.kind} targets are built once at start)")
                break
            parts = [p for p in _FIXED_TARGET_PARTS if getattr(version, p) is not None]
            if parts:
                out.append(f"targets[{tspec.name}].{parts[0]}")
                break
    return out
