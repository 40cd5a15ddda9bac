"""Intake from the ecosystem: the Alertmanager webhook (payload v4) and HTTP heartbeats.

Alertmanager re-sends active alerts on every group and repeat interval, so the same alert
may arrive hundreds of times: :class:`~novacron.sensors.alertmanager.AlertDeduplicator`
folds resends into one episode, and only an episode's first firing notification files a
fault. Intake calls are audited through the incidents they open or resolve (their
timelines), not per delivery, so the audit trail is not flooded by resends.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from novacron.api.auth import Operator, authorize
from novacron.api.context import ApiContext, get_ctx
from novacron.api.errors import ERROR_RESPONSES, ApiError
from novacron.api.schemas import IntakeOut, OkOut
from novacron.errors import InputError
from novacron.model import Fault
from novacron.runtime.controller import Controller
from novacron.sensors.alertmanager import AlertEvent, AlertSignal, parse_webhook
from novacron.store.tokens import Role

__all__ = ["router"]

router = APIRouter(responses=ERROR_RESPONSES)
Ctx = Annotated[ApiContext, Depends(get_ctx)]
_MAX_TARGET = 128  # the store's target column


def _check_targets(events: list[AlertEvent]) -> None:
    for i, ev in enumerate(events):
        if len(ev.target) > _MAX_TARGET:
            raise InputError(f"target name longer than {_MAX_TARGET} characters", where=f"alerts[{i}].labels")


def _already_filed(c: Controller, sig: AlertSignal) -> bool:
    """A restarted API has an empty deduplicator: the store still knows the episode's fault."""
    inc = c.incidents.open_for(sig.event.target)
    return inc is not None and any(f["id"] == sig.fault_id for f in c.store.faults(inc.id))


def _described(sig: AlertSignal) -> Fault:
    """The alert's fault, with a one-line detail the incident summary can show."""
    assert sig.fault is not None
    ev = sig.event
    summary = ev.annotations.get("summary") or ev.annotations.get("description") or ""
    detail = f"{ev.name}: {summary}" if summary else ev.name or ev.fingerprint
    return replace(sig.fault, evidence={**sig.fault.evidence, "detail": detail})


def _resolve(c: Controller, sig: AlertSignal) -> str | None:
    """Close the target's incident if this alert opened it (other signals keep theirs open)."""
    inc = c.incidents.open_for(sig.event.target)
    if inc is None:
        return None
    faults = c.store.faults(inc.id)
    if not faults or faults[0]["id"] != sig.fault_id:
        c.incidents.event(inc, "signal", f"alert {sig.event.name} resolved", fault_id=sig.fault_id)
        return None
    c.incidents.resolve(inc, healed_by=f"alert {sig.event.name or sig.event.fingerprint} resolved in Alertmanager")
    return inc.id


@router.post(
    "/webhooks/alertmanager",
    tags=["intake"],
    response_model=IntakeOut,
    openapi_extra={
        "security": [{"HTTPBearer": []}],
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/WebhookPayload"}}},
        },
    },
)
async def alertmanager(request: Request) -> Response:
    """Alertmanager webhook receiver (payload version 4); idempotent under resends.

    Configure Alertmanager with ``http_config: {authorization: {credentials: <token>}}``.
    """
    # The hot path takes only the request: no dependency solving, no response re-validation.
    ctx: ApiContext = request.app.state.ctx
    authorize(ctx, request, Role.OPERATOR)
    c = ctx.live()
    events = parse_webhook(await request.body())  # the whole payload is validated before anything applies
    _check_targets(events)
    now = ctx.clock.now()
    out = IntakeOut(received=len(events), opened=[], repeated=0, resolved=[])
    for sig in ctx.dedup.observe_all(events, now):
        if sig.kind == "opened" and sig.fault is not None and not _already_filed(c, sig):
            inc, new = c.file_fault(_described(sig))
            if new:
                out.opened.append(inc.id)
        elif sig.kind == "resolved":
            closed = _resolve(c, sig)
            if closed is not None:
                out.resolved.append(closed)
        else:
            out.repeated += 1
    return Response(out.model_dump_json(), media_type="application/json")


@router.post("/heartbeat/{name}", tags=["intake"])
async def heartbeat(name: str, ctx: Ctx, _who: Operator) -> OkOut:
    """A heartbeat over HTTP (``target`` or ``target#replica``), same as one UDP datagram."""
    if not ctx.live().heartbeats.beat(name):
        raise ApiError(404, f"no heartbeat source {name!r} is configured", "name")
    return OkOut(detail=f"beat from {name}")
