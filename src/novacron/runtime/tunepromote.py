"""Promoting a tuned configuration: a ``config_change`` action through the executor, never around it.

The winner's spec-path values make a new spec. For every target whose spec changed, one
``config_change`` action (risk medium, inverse: ``config_rollback`` to the previous target
spec) goes to the one executor, behind the safety gate with the spec's policy: the kill
switch, the rails, approval when the policy asks for it for medium risk, and dry-run —
which wins over approval (nothing is touched, so no one is asked). Applying it writes the
new spec version: stored as a config version and, when the spec came from a file, written
back to that file, which ``novacron run`` reads on its next start. :func:`rollback_promotion`
runs the inverse through the same path. Nothing changes any other way.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from novacron.clock import MonotonicClock
from novacron.errors import InputError
from novacron.healing.catalog import inverse_of, new_action
from novacron.healing.executor import ExecResult
from novacron.model import Action, ActionKind, Outcome, TargetId, TargetState
from novacron.runtime.compose import Composition, compose
from novacron.runtime.tuneproblem import apply_values
from novacron.settings import FleetSpec, TargetSpec, load_spec, spec_to_yaml
from novacron.store import Store
from novacron.telemetry import Metrics

__all__ = ["PromotionResult", "SpecActuator", "promote", "rollback_promotion"]

TUNER = "agent:tuner"


@dataclass(frozen=True, slots=True)
class PromotionResult:
    """How one target's config change ended."""

    target: str
    action_id: str
    status: str
    detail: str
    version: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "target": self.target,
            "action_id": self.action_id,
            "status": self.status,
            "detail": self.detail,
            "version": self.version,
        }


class SpecActuator:
    """Applies config changes to the spec: a new stored version, and the spec file when there is one."""

    def __init__(self, spec: FleetSpec, spec_path: Path | None) -> None:
        self.store: Store | None = None  # the composition's store, set once it is open
        self.spec = spec
        self.spec_path = spec_path
        self.applied: list[Action] = []

    async def apply(self, action: Action) -> Outcome:
        """Swap the target's spec for the one the action carries."""
        started = time.time()
        if action.kind not in (ActionKind.CONFIG_CHANGE, ActionKind.CONFIG_ROLLBACK):
            return Outcome(action.id, False, started, time.time(), f"{action.kind} does not change a spec")
        assert self.store is not None
        new_target = TargetSpec.model_validate(action.params["target_spec"])
        targets = [new_target if t.name == new_target.name else t for t in self.spec.targets]
        spec = self.spec.model_copy(update={"targets": targets})
        body = spec_to_yaml(spec)
        version = self.store.save_config(body, source=f"{action.kind}:{action.id}", now=time.time())
        if self.spec_path is not None:
            _write_atomically(self.spec_path, body)
        self.spec = spec
        self.applied.append(action)
        return Outcome(
            action.id, True, started, time.time(), f"spec version {version.version}", {"version": version.version}
        )

    async def observe(self, target: TargetId) -> TargetState:
        """A spec change has no processes of its own to report."""
        return TargetState(target, 0, 0, detail="spec")


def _write_atomically(path: Path, body: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(body, encoding="utf-8")
    tmp.replace(path)


def _compose(spec: FleetSpec, store_url: str, spec_path: Path | None, *, dry_run: bool) -> Composition:
    policy = spec.policy.model_copy(update={"dry_run": spec.policy.dry_run or dry_run})
    actuator = SpecActuator(spec, spec_path)
    parts = compose(
        graph={t.name: [] for t in spec.targets},
        policy=policy,
        store_url=store_url,
        actuator=actuator,
        clock=MonotonicClock(),
        metrics=Metrics(),
        component="tuner",
    )
    actuator.store = parts.store
    return parts


async def _execute(parts: Composition, action: Action, *, approve: bool | None, who: str) -> ExecResult:
    """Run one action; a pending approval is answered by ``approve`` (None: nobody answers → rejected)."""
    task = asyncio.create_task(parts.flow.executor.execute(action))
    while not task.done():
        for pending in parts.approvals.pending():
            if pending.id == action.id:
                parts.approvals.decide(action.id, approve=bool(approve), who=who if approve else "nobody")
        await asyncio.sleep(0.01)
    return await task


def promote(
    spec: FleetSpec,
    values: dict[str, Any],
    *,
    store_url: str,
    spec_path: Path | None = None,
    study: str = "",
    dry_run: bool = False,
    approve: bool | None = None,
    who: str = "cli",
) -> list[PromotionResult]:
    """Promote ``values`` (spec path → value): one gated ``config_change`` per changed target."""
    new_spec = apply_values(spec, values)
    changed = [t for t in spec.targets if new_spec.target(t.name) != t]
    if not changed:
        return []

    async def main() -> list[PromotionResult]:
        parts = _compose(spec, store_url, spec_path, dry_run=dry_run)
        try:
            base = parts.store.save_config(spec_to_yaml(spec), source="before tuning", now=time.time())
            out = []
            for old in changed:
                new = new_spec.target(old.name)
                digest = hashlib.sha256(new.model_dump_json().encode()).hexdigest()[:16]
                action = new_action(
                    ActionKind.CONFIG_CHANGE,
                    TargetId(old.name),
                    key=f"tune/{study}/{old.name}/{digest}/{base.version}",
                    params={
                        "target_spec": new.model_dump(mode="json"),
                        "from_target_spec": old.model_dump(mode="json"),
                        "from_version": base.version,
                        "study": study,
                    },
                    reason=f"tuned configuration from study {study}" if study else "tuned configuration",
                    requested_by=TUNER,
                )
                result = await _execute(parts, action, approve=approve, who=who)
                version = result.outcome.data.get("version") if result.outcome is not None else None
                out.append(PromotionResult(old.name, action.id, result.status.value, result.detail, version))
            return out
        finally:
            parts.store.close()

    return asyncio.run(main())


def rollback_promotion(
    action_id: str, *, store_url: str, spec_path: Path, dry_run: bool = False, who: str = "cli"
) -> PromotionResult:
    """Undo a promotion: its inverse (``config_rollback`` to the previous target spec) through the executor."""
    spec = load_spec(spec_path)

    async def main() -> PromotionResult:
        parts = _compose(spec, store_url, spec_path, dry_run=dry_run)
        try:
            record = parts.store.action(action_id)
            if record.action.kind is not ActionKind.CONFIG_CHANGE:
                raise InputError(f"{action_id} is a {record.action.kind}, not a config_change", where="--rollback")
            undo = inverse_of(record.action)
            assert undo is not None  # config_change has an inverse in the catalog
            result = await _execute(parts, undo, approve=True, who=who)
            version = result.outcome.data.get("version") if result.outcome is not None else None
            return PromotionResult(undo.target, undo.id, result.status.value, result.detail, version)
        finally:
            parts.store.close()

    return asyncio.run(main())
