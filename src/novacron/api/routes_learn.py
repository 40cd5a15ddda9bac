"""Operator feedback on actions: ``POST /actions/{id}/feedback`` (good or bad, with a note)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from novacron.api.auth import Operator
from novacron.api.context import ApiContext, get_ctx
from novacron.api.errors import ERROR_RESPONSES, ApiError
from novacron.errors import NotFoundError
from novacron.healing.feedback import record_feedback

__all__ = ["FeedbackIn", "FeedbackOut", "router"]

router = APIRouter(responses=ERROR_RESPONSES)
Ctx = Annotated[ApiContext, Depends(get_ctx)]


class FeedbackIn(BaseModel):
    """An operator's mark on an action."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    verdict: Literal["good", "bad"]
    note: str = Field("", max_length=2000)


class FeedbackOut(BaseModel):
    """The mark as kept, and whether a learning policy learned from it."""

    action_id: str
    verdict: str
    by: str
    learned: bool


@router.post("/actions/{action_id}/feedback", tags=["actions"])
async def feedback(action_id: str, body: FeedbackIn, ctx: Ctx, who: Operator) -> FeedbackOut:
    """Mark an action good or bad: kept, audited, and (if a learning policy chose it) learned from."""
    chooser = ctx.controller.flow.chooser if ctx.controller is not None else None
    try:
        learned = record_feedback(
            ctx.store, chooser, action_id, body.verdict, actor=who.name, note=body.note, now=ctx.clock.now()
        )
    except NotFoundError:
        raise ApiError(404, f"no action {action_id!r}", "action_id") from None
    return FeedbackOut(action_id=action_id, verdict=body.verdict, by=who.name, learned=learned)
