"""``GET /agents``: the operational agents' outputs, newest first."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict

from novacron.api.auth import Viewer
from novacron.api.context import ApiContext, get_ctx
from novacron.api.errors import ERROR_RESPONSES

__all__ = ["AgentOutputOut", "router"]

router = APIRouter(responses=ERROR_RESPONSES)
Ctx = Annotated[ApiContext, Depends(get_ctx)]


class AgentOutputOut(BaseModel):
    """One agent run: findings (with evidence and confidence) and routed proposals."""

    model_config = ConfigDict(frozen=True)

    id: str
    agent: str
    run_at: float
    targets: list[str]
    findings: list[dict[str, Any]]
    proposals: list[dict[str, Any]]
    applied: bool
    dry_run: bool
    summary: str


@router.get("/agents", tags=["agents"])
async def agents(
    ctx: Ctx,
    _who: Viewer,
    agent: Annotated[str | None, Query(max_length=64, description="Only this agent's outputs.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="At most this many, newest first.")] = 100,
) -> list[AgentOutputOut]:
    """Agent outputs, newest first, optionally of one agent."""
    return [AgentOutputOut(**row) for row in ctx.store.agent_outputs(agent=agent, limit=limit)]
