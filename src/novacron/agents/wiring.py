"""Builds the coordinator for a running controller (the controller calls this, nothing else).

Kept apart from the controller so the composition root only adds three calls: build,
start, stop — plus feeding it observations.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from novacron.agents.coordinator import Coordinator, ExecutorLike
from novacron.agents.metrics import AgentMetrics
from novacron.agents.registry import AgentRegistry, default_registry
from novacron.clock import Clock
from novacron.settings import FleetSpec
from novacron.store import Store
from novacron.telemetry import Metrics

__all__ = ["coordinator_for", "read_logs"]

_TAIL = 64 * 1024


class _Actuator(Protocol):
    def pids(self, target: str) -> Sequence[int]: ...


class ControllerParts(Protocol):
    """What the coordinator needs from a controller."""

    spec: FleetSpec
    store: Store
    clock: Clock
    metrics: Metrics
    workdir: Path

    @property
    def executor(self) -> ExecutorLike: ...

    @property
    def actuator(self) -> _Actuator: ...


def read_logs(log_dir: Path, target: str) -> str:
    """The last 64 KiB of each replica's log of ``target``."""
    parts = []
    for path in sorted(log_dir.glob(f"{target}-*.log")):
        try:
            with path.open("rb") as f:
                size = f.seek(0, 2)
                f.seek(max(0, size - _TAIL))
                parts.append(f.read().decode("utf-8", "replace"))
        except OSError:
            continue
    return "\n".join(parts)


def coordinator_for(parts: ControllerParts, registry: AgentRegistry | None = None) -> Coordinator | None:
    """The coordinator for a controller, or None when the spec does not enable agents."""
    if not parts.spec.agents.enabled:
        return None
    return Coordinator(
        parts.spec,
        registry or default_registry(),
        store=parts.store,
        clock=parts.clock,
        executor=parts.executor,
        metrics=AgentMetrics(parts.metrics.registry),
        pids=parts.actuator.pids,
        logs=lambda t: read_logs(parts.workdir / "logs", t),
        workdir=str(parts.workdir),
        # traffic: circuit actions are applied (not only proposed) for targets behind a frontend.
        frontend=lambda t: _frontend(parts.spec, t),
    )


def _frontend(spec: FleetSpec, target: str) -> str | None:
    """The listen address of ``target``'s load-balancer frontend, if it has one."""
    fe = next((t.frontend for t in spec.targets if t.name == target), None)
    return None if fe is None else fe.listen
