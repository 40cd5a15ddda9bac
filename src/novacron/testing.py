"""Public fakes and builders for tests — NovaCron's own and its users'.

- :class:`FakeClock`: time that moves only when told (re-exported from :mod:`novacron.clock`).
- :class:`FakeActuator`: an in-memory actuator that records actions and reports scripted outcomes.
- :func:`http_service_target` / :func:`fleet`: small real fleets built on the demo HTTP service.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from typing import Any

from novacron.clock import Clock, FakeClock, MonotonicClock
from novacron.model import Action, Outcome, TargetId, TargetState
from novacron.settings import FleetSpec, HttpCheck, Policy, TargetSpec

__all__ = ["FakeActuator", "FakeClock", "fleet", "http_service_target"]


class FakeActuator:
    """Records every applied action; ``script`` decides each outcome (default: success)."""

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        script: Callable[[Action], bool] | None = None,
        replicas: Mapping[str, int] | None = None,
    ) -> None:
        self.clock = clock or MonotonicClock()
        self.script = script or (lambda _a: True)
        self.applied: list[Action] = []
        self.replicas = dict(replicas or {})

    async def apply(self, action: Action) -> Outcome:
        """Record the action and answer per the script."""
        start = self.clock.now()
        self.applied.append(action)
        ok = self.script(action)
        return Outcome(action.id, ok, start, self.clock.now(), "scripted success" if ok else "scripted failure")

    async def observe(self, target: TargetId) -> TargetState:
        """Report the configured replica count as running and desired."""
        n = self.replicas.get(target, 1)
        return TargetState(target, running=n, desired=n)


def http_service_target(name: str, port: int, **overrides: Any) -> TargetSpec:
    """A target running the demo HTTP service on ``port`` with a 100 ms HTTP check."""
    values: dict[str, Any] = {
        "name": name,
        "command": [sys.executable, "-m", "novacron.demo.service", "--name", name, "--port", str(port)],
        "port": port,
        "start_timeout_s": 5.0,
        "stop_timeout_s": 2.0,
        "checks": [HttpCheck(url=f"http://127.0.0.1:{port}/health", interval_s=0.1, timeout_s=0.3, failures=2)],
    }
    values.update(overrides)
    return TargetSpec(**values)


def fleet(*targets: TargetSpec, store_url: str = "sqlite:///:memory:", **policy: Any) -> FleetSpec:
    """A fleet of ``targets`` with ``policy`` overrides (e.g. ``dry_run=True``)."""
    return FleetSpec.model_validate(
        {
            "name": "test",
            "policy": Policy(**policy).model_dump(),
            "controller": {"store_url": store_url},
            "targets": [t.model_dump() for t in targets],
        }
    )
