"""Mutating routes: the kill switch, manual heal and rollback, acknowledgements, approvals.

Each call is audited with the token's name as the actor, what it asked, and the result
(also when it is refused). Everything that acts goes through the controller's executor and
safety gate; the API never touches a target itself.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response

from novacron.api.auth import Admin, Operator, Principal
from novacron.api.context import ApiContext, approvals_of, get_ctx
from novacron.api.errors import ERROR_RESPONSES, ApiError
from novacron.api.schemas import (
    ApprovalIn,
    ApprovalOut,
    ErrorOut,
    ExecOut,
    HealIn,
    KillSwitchOut,
    OkOut,
    ReloadOut,
    RollbackActionIn,
    RollbackIn,
)
from novacron.api.views import acknowledgement
from novacron.errors import ConflictError, InputError, NotFoundError, NovacronError
from novacron.healing.executor import ExecResult
from novacron.model import ActionKind, IncidentId, TimelineEvent

__all__ = ["router"]

router = APIRouter(responses=ERROR_RESPONSES)
Ctx = Annotated[ApiContext, Depends(get_ctx)]
_ACCEPTED: dict[int | str, dict[str, Any]] = {
    202: {"model": ExecOut, "description": "Still running after `wait_s`; see /actions."},
    409: {"model": ErrorOut, "description": "The fleet's state refuses the request (e.g. nothing to roll back to)."},
}


def _audit(ctx: ApiContext, who: Principal, verb: str, subject: str, result: str, **detail: Any) -> None:
    ctx.store.audit(now=ctx.clock.now(), actor=who.name, verb=verb, subject=subject, result=result, **detail)


@router.post("/autonomous/disable", tags=["control"])
async def disable(ctx: Ctx, who: Admin) -> KillSwitchOut:
    """The kill switch: stop all automated healing (manual actions still work). Admin only."""
    ctx.live().set_autonomous(False, who=who.name)  # the controller audits the switch itself
    return KillSwitchOut(autonomous=False, by=who.name)


@router.post("/autonomous/enable", tags=["control"])
async def enable(ctx: Ctx, who: Admin) -> KillSwitchOut:
    """Turn automated healing back on. Admin only."""
    ctx.live().set_autonomous(True, who=who.name)
    return KillSwitchOut(autonomous=True, by=who.name)


@router.post("/reload", tags=["control"])
async def reload(ctx: Ctx, who: Admin) -> ReloadOut:
    """Re-read the controller's spec file and apply the difference in place. Admin only.

    Added targets start, removed ones stop, changed ones restart with their new definition,
    the rest keep running untouched; the policy takes effect. A spec that does not load, or
    changes what cannot change in place, is refused (400, naming the file and field) and
    nothing is applied. The controller audits every reload itself.
    """
    report = await ctx.live().reload(who=who.name)
    return ReloadOut(**report.as_dict(), by=who.name)


async def _settle(
    ctx: ApiContext,
    who: Principal,
    job: Coroutine[Any, Any, ExecResult],
    *,
    verb: str,
    subject: str,
    wait_s: float,
    response: Response,
) -> ExecOut:
    """Run an action, answer with its result, or 202 if it outlasts ``wait_s`` (audited either way)."""
    task = asyncio.get_running_loop().create_task(job)

    def finished(t: asyncio.Task[ExecResult]) -> None:
        if t.cancelled():
            _audit(ctx, who, verb, subject, "cancelled")
        elif (exc := t.exception()) is not None:
            _audit(ctx, who, verb, subject, "refused" if isinstance(exc, NovacronError) else "error", detail=str(exc))
        else:
            r = t.result()
            _audit(ctx, who, verb, subject, r.status.value, action_id=r.action.id, detail=r.detail)

    task.add_done_callback(finished)
    done, _ = await asyncio.wait({task}, timeout=wait_s)
    if task in done:
        try:
            return ExecOut.of(task.result())
        except InputError as exc:  # a well-formed request the fleet's state refuses
            raise ApiError(409, exc.reason, exc.where or None) from exc
    holder = ctx.background
    keep = asyncio.get_running_loop().create_task(_await_quietly(task))
    holder.add(keep)
    keep.add_done_callback(holder.discard)
    response.status_code = 202
    return ExecOut(action_id=None, kind=verb, target=subject, status="running", detail="still running", verified=False)


async def _await_quietly(task: asyncio.Task[ExecResult]) -> None:
    # The outcome was audited by the done callback; nobody awaits this result any more.
    await asyncio.wait({task})


@router.post("/autonomous/heal", tags=["control"], responses=_ACCEPTED)
async def heal(body: HealIn, ctx: Ctx, who: Operator, response: Response) -> ExecOut:
    """A manual action on a target, through the executor and safety gate."""
    c = ctx.live()
    if body.target not in {t.name for t in c.spec.targets}:
        _audit(ctx, who, f"api.heal.{body.action}", body.target, "refused", detail="unknown target")
        raise ApiError(404, f"no target {body.target!r} in the fleet", "target")
    params = body.params.model_dump(exclude_none=True)
    _check_replicas(ctx, who, body, params)
    await _check_servers(ctx, who, body, params)
    job = c.heal(body.target, ActionKind(body.action), who=who.name, params=params)
    return await _settle(
        ctx, who, job, verb=f"api.heal.{body.action}", subject=body.target, wait_s=body.wait_s, response=response
    )


def _check_replicas(ctx: ApiContext, who: Principal, body: HealIn, params: dict[str, Any]) -> None:
    """Replica indexes within the target's replicas: never a replica on a port nobody declared."""
    c = ctx.live()
    if c.spec.target(body.target).kind != "process":
        return
    desired = c.actuator.desired(body.target)
    for field, indexes in (("replica", [params.get("replica")]), ("replicas", params.get("replicas") or [])):
        bad = [i for i in indexes if i is not None and i >= desired]
        if bad:
            reason = f"replica {bad[0]} does not exist: {body.target} runs replicas 0..{desired - 1}"
            _audit(ctx, who, f"api.heal.{body.action}", body.target, "refused", detail=reason)
            raise ApiError(422, reason, f"params.{field}")


async def _check_servers(ctx: ApiContext, who: Principal, body: HealIn, params: dict[str, Any]) -> None:
    """HAProxy servers a traffic action names exist in the target's backend (a 422 otherwise)."""
    traffic = ctx.live().traffic
    named = {"params.weights": sorted(params.get("weights") or {}), "params.server": [params.get("server")]}
    if traffic is None or not traffic.fronted(body.target) or not any(n for ns in named.values() for n in ns):
        return  # the actuator answers for a target without a frontend
    try:
        known = await traffic.servers(body.target)
    except OSError:
        return  # HAProxy not answering: the action fails there, on the record
    for field, names in named.items():
        unknown = [n for n in names if n is not None and n not in known]
        if unknown:
            reason = f"{body.target} has no server {unknown[0]!r} (its servers: {', '.join(sorted(known))})"
            _audit(ctx, who, f"api.heal.{body.action}", body.target, "refused", detail=reason)
            raise ApiError(422, reason, field)


@router.post("/autonomous/rollback", tags=["control"], responses=_ACCEPTED)
async def rollback(body: RollbackIn, ctx: Ctx, who: Operator, response: Response) -> ExecOut:
    """Undo one action (``action_id``) or roll a target back to the previous spec version (``target``)."""
    c = ctx.live()
    if isinstance(body, RollbackActionIn):
        try:
            ctx.store.action(body.action_id)
        except NotFoundError:
            _audit(ctx, who, "api.rollback", body.action_id, "refused", detail="unknown action")
            raise ApiError(404, f"no action {body.action_id!r}", "action_id") from None
        job = c.rollback(who=who.name, action_id=body.action_id)
        subject = body.action_id
    else:
        if body.target not in {t.name for t in c.spec.targets}:
            _audit(ctx, who, "api.rollback", body.target, "refused", detail="unknown target")
            raise ApiError(404, f"no target {body.target!r} in the fleet", "target")
        job = c.rollback(who=who.name, target=body.target)
        subject = body.target
    return await _settle(ctx, who, job, verb="api.rollback", subject=subject, wait_s=body.wait_s, response=response)


@router.post("/targets/{target}/unquarantine", tags=["control"])
async def unquarantine(target: str, ctx: Ctx, who: Operator) -> OkOut:
    """Lift a target's flap quarantine so automated healing acts on it again."""
    c = ctx.live()
    if target not in c.flow.graph:
        _audit(ctx, who, "api.unquarantine", target, "refused", detail="unknown target")
        raise ApiError(404, f"no target {target!r} in the fleet", "target")
    lifted = c.unquarantine(target, who=who.name)
    return OkOut(detail=f"quarantine of {target} lifted" if lifted else f"{target} was not quarantined")


@router.post("/incidents/{incident_id}/ack", tags=["incidents"])
async def acknowledge(incident_id: str, ctx: Ctx, who: Operator) -> OkOut:
    """Acknowledge an incident: a human owns it now (recorded on its timeline).

    A second acknowledgement answers who already did and when (200, nothing recorded again);
    a resolved incident has nothing to acknowledge (409).
    """
    try:
        inc = ctx.store.incident(incident_id)
    except NotFoundError:
        _audit(ctx, who, "api.incident.ack", incident_id, "not_found")
        raise ApiError(404, f"no incident {incident_id!r}", "incident_id") from None
    if not inc.is_open:
        _audit(ctx, who, "api.incident.ack", incident_id, "refused", detail=inc.status.value)
        raise ApiError(409, f"incident {incident_id} is {inc.status}: there is nothing to acknowledge", "incident_id")
    earlier = acknowledgement(ctx.store, incident_id)
    if earlier is not None:  # one owner: a second ack neither re-records nor re-notifies
        _audit(ctx, who, "api.incident.ack", incident_id, "already_acknowledged")
        when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(earlier.time))
        return OkOut(detail=f"already acknowledged by {earlier.data.get('by', '?')} at {when}")
    detail = f"acknowledged by {who.name}"
    if ctx.controller is not None:
        ctx.controller.incidents.event(inc, "acknowledged", detail, by=who.name)
    else:
        ctx.store.add_event(
            IncidentId(inc.id), TimelineEvent(ctx.clock.now(), "acknowledged", detail, {"by": who.name})
        )
    _audit(ctx, who, "api.incident.ack", incident_id, "ok", status=inc.status.value)
    return OkOut(detail=detail)


@router.post("/approvals/{action_id}", tags=["actions"])
async def decide(action_id: str, body: ApprovalIn, ctx: Ctx, who: Operator) -> ApprovalOut:
    """Approve or reject an action waiting for a human, whichever node asked (stored once; a second decision is 409)."""
    try:
        await approvals_of(ctx).decide_async(action_id, approve=body.decision == "approve", who=who.name)
    except NotFoundError as exc:
        _audit(ctx, who, f"api.approval.{body.decision}", action_id, "not_found")
        raise ApiError(404, str(exc), "action_id") from None
    except ConflictError as exc:
        _audit(ctx, who, f"api.approval.{body.decision}", action_id, "refused", detail=str(exc))
        raise ApiError(409, str(exc), "action_id") from None
    _audit(ctx, who, f"api.approval.{body.decision}", action_id, "ok")
    return ApprovalOut(action_id=action_id, decision=body.decision, by=who.name)
