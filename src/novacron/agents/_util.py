"""Small helpers shared by the built-in agents."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from novacron.agents.base import AgentContext, AgentOutput, Finding, Proposal
from novacron.healing.catalog import new_action
from novacron.model import ActionKind, TargetId

__all__ = ["output", "propose"]


def output(
    agent: str, ctx: AgentContext, findings: Iterable[Finding], proposals: Iterable[Proposal], summary: str
) -> AgentOutput:
    """An AgentOutput stamped with an id and the context's time; nothing applied yet."""
    fs, ps = tuple(findings), tuple(proposals)
    targets = tuple(sorted({f.target for f in fs} | {p.action.target for p in ps}))
    return AgentOutput(
        id=f"ag-{uuid.uuid4().hex[:12]}",
        agent=agent,
        run_at=ctx.clock.now(),
        targets=targets,
        findings=fs,
        proposals=ps,
        applied=False,
        dry_run=ctx.dry_run,
        summary=summary,
    )


def propose(
    agent: str,
    kind: ActionKind,
    target: str,
    *,
    key: str,
    reason: str,
    rollback: str,
    params: Mapping[str, Any] | None = None,
) -> Proposal:
    """A proposal of one catalog action, requested by the agent."""
    action = new_action(
        kind, TargetId(target), key=f"agent/{agent}/{key}", params=params, reason=reason, requested_by=f"agent:{agent}"
    )
    return Proposal(action=action, rollback=rollback)
