"""Agent contexts over plain data, for the agents' own tests."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from novacron.agents.base import AgentContext
from novacron.clock import FakeClock
from novacron.model import Observation
from novacron.settings import FleetSpec, TargetSpec
from novacron.store import ActionRecord
from novacron.testing import fleet

__all__ = ["context", "spec_of"]


def spec_of(*names: str, **extra: Any) -> FleetSpec:
    """A fleet of ``sleep`` targets named ``names``."""
    return fleet(*(TargetSpec(name=n, command=["sleep", "60"], **extra) for n in names))


def context(
    spec: FleetSpec,
    clock: FakeClock,
    *,
    observations: dict[str, list[Observation]] | None = None,
    actions: Sequence[ActionRecord] = (),
    pids: dict[str, list[int]] | None = None,
    logs: dict[str, str] | None = None,
    options: dict[str, Any] | None = None,
) -> AgentContext:
    """A read-only context over the given data."""
    obs = observations or {}
    return AgentContext(
        spec=spec,
        clock=clock,
        actions=lambda: actions,
        open_incidents=lambda: (),
        pids=lambda t: (pids or {}).get(t, []),
        observations=lambda t: obs.get(t, []),
        logs=lambda t: (logs or {}).get(t, ""),
        options=options or {},
    )
