"""One output record for every agent, the context they read, and the agent contract.

An agent is anything with a ``name``, a default ``interval_s`` and ``run(context) ->
AgentOutput``. It only *proposes*: findings with evidence and confidence, and actions
(executor :class:`~novacron.model.Action` records with their risk, inverse and rollback
plan). The coordinator decides what is applied, sent to approval or only recorded.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from novacron.clock import Clock
from novacron.model import EMPTY, Action, Incident, Observation
from novacron.settings import FleetSpec
from novacron.store import ActionRecord

__all__ = ["Agent", "AgentContext", "AgentOutput", "Finding", "Proposal"]


@dataclass(frozen=True, slots=True)
class Finding:
    """Something an agent noticed about one target (or ``fleet``)."""

    target: str
    kind: str  # e.g. "leak", "saturation_risk", "flapping", "circuit_failed", "crash_bug"
    summary: str
    confidence: float
    evidence: Mapping[str, Any] = field(default_factory=lambda: EMPTY)

    @property
    def key(self) -> tuple[str, str]:
        """What makes two findings the same, across agents."""
        return (self.target, self.kind)


@dataclass(frozen=True, slots=True)
class Proposal:
    """An executor action an agent proposes, with how to undo it."""

    action: Action
    rollback: str
    status: str = "proposed"  # proposed → applied | awaiting_approval | dry_run | deduplicated | failed …
    detail: str = ""


@dataclass(frozen=True, slots=True)
class AgentOutput:
    """What one run of one agent found, proposed and did."""

    id: str
    agent: str
    run_at: float
    targets: tuple[str, ...]
    findings: tuple[Finding, ...]
    proposals: tuple[Proposal, ...]
    applied: bool
    dry_run: bool
    summary: str = ""

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (the API's and ``--json``'s shape)."""
        return {
            "id": self.id,
            "agent": self.agent,
            "run_at": self.run_at,
            "targets": list(self.targets),
            "findings": [
                {
                    "target": f.target,
                    "kind": f.kind,
                    "summary": f.summary,
                    "confidence": round(f.confidence, 3),
                    "evidence": dict(f.evidence),
                }
                for f in self.findings
            ],
            "proposals": [
                {
                    "action_id": p.action.id,
                    "kind": p.action.kind.value,
                    "target": p.action.target,
                    "risk": p.action.risk.label,
                    "params": dict(p.action.params),
                    "reason": p.action.reason,
                    "rollback": p.rollback,
                    "status": p.status,
                    "detail": p.detail,
                }
                for p in self.proposals
            ],
            "applied": self.applied,
            "dry_run": self.dry_run,
            "summary": self.summary,
        }


@dataclass(frozen=True, slots=True)
class AgentContext:
    """Everything an agent may read; nothing in it changes the world."""

    spec: FleetSpec
    clock: Clock
    actions: Callable[[], Sequence[ActionRecord]]
    open_incidents: Callable[[], Sequence[Incident]]
    pids: Callable[[str], Sequence[int]]
    observations: Callable[[str], Sequence[Observation]]
    logs: Callable[[str], str]
    options: Mapping[str, Any] = field(default_factory=lambda: EMPTY)
    dry_run: bool = False
    workdir: str = "."  # the controller's working directory (patched builds are exported under it)


@runtime_checkable
class Agent(Protocol):
    """The agent contract: a name, a default schedule, and one method."""

    name: str
    interval_s: float

    def run(self, context: AgentContext) -> AgentOutput:
        """Look, judge, propose."""
        ...
