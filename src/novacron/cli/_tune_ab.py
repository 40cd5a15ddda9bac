"""A/B before promotion: a tuned target runs as a canary on the real fleet, and is promoted only if it holds.

For every target the winner changes, the running controller (found like every steering
command) starts a canary experiment through its API: the tuned target's command and
environment as one more server behind the target's frontend, its share of traffic moved
step by step through the executor, judged at every look by the always-valid test on errors
and p95 latency. Only when every canary ends ``promoted`` (not worse at full traffic) does
the configuration become a new spec version through the gated ``config_change``; a canary
rolled back, halted, stopped by hand or undecided within ``timeout_s`` (then stopped)
promotes nothing.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any

from novacron.errors import InputError
from novacron.settings import FleetSpec, TargetSpec
from novacron.tuningspec import AbSpec

__all__ = ["canary_names", "run_canaries"]

_ENDED = {"promoted", "rolled_back", "halted", "stopped"}
_POLL_S = 0.5


def canary_names(study: str, targets: list[TargetSpec]) -> dict[str, str]:
    """An experiment name per target: ``tune-<target>-<digest of the tuned target spec>``."""
    out = {}
    for t in targets:
        digest = hashlib.sha256(f"{study}/{t.model_dump_json()}".encode()).hexdigest()[:10]
        out[t.name] = f"tune-{t.name.lower()}-{digest}"[:63]
    return out


def run_canaries(
    spec: FleetSpec,
    new_spec: FleetSpec,
    ab: AbSpec,
    *,
    study: str,
    call: Callable[..., Any],
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> list[dict[str, Any]]:
    """Run one canary per changed target through the controller's API; each one's final state.

    ``call(method, path, body=None, wait_s=0.0)`` is the API client. Raises InputError,
    before anything starts, when a changed target has no frontend to split traffic on.
    """
    changed = [new_spec.target(t.name) for t in spec.targets if new_spec.target(t.name) != t]
    bare = [t.name for t in changed if t.frontend is None]
    if bare:
        raise InputError(f"target {bare[0]!r} has no frontend: an A/B needs one to split traffic", where="tuning.ab")
    fixed = [t.name for t in changed if not any("{port}" in arg for arg in t.command)]
    if fixed:
        raise InputError(
            "the command needs '{port}' so a canary can run beside the replicas", where=f"targets.{fixed[0]}.command"
        )
    names = canary_names(study, changed)
    out = []
    for target in changed:
        body = {
            "name": names[target.name],
            "target": target.name,
            "arm": "tuned",
            "command": list(target.command),
            "settings": {**ab.experiment_settings(), "env": dict(target.env)},
        }
        call("POST", "/experiments", body, wait_s=30.0)
        out.append(_await_decision(names[target.name], ab.timeout_s, call=call, sleep=sleep, clock=clock))
        if out[-1]["phase"] != "promoted":
            break  # one canary that did not hold is enough: the others are not started
    return out


def _await_decision(
    name: str, timeout_s: float, *, call: Callable[..., Any], sleep: Callable[[float], None], clock: Callable[[], float]
) -> dict[str, Any]:
    deadline = clock() + timeout_s
    row: dict[str, Any] = call("GET", f"/experiments/{name}?looks=0")
    while row["phase"] not in _ENDED:
        if clock() >= deadline:
            row = call("POST", f"/experiments/{name}/stop", wait_s=30.0)
            row["reason"] = f"no decision within {timeout_s:g} s; stopped"
            break
        sleep(_POLL_S)
        row = call("GET", f"/experiments/{name}?looks=0")
    return {
        "experiment": name,
        "target": row["target"],
        "phase": row["phase"],
        "reason": row.get("reason", ""),
        "arms": row.get("arms", {}),
    }
