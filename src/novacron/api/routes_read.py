"""Read-only routes: health, fleet, incidents, post-mortems, actions, audit, approvals, metrics."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from novacron.api.auth import Viewer
from novacron.api.context import ApiContext, approvals_of, get_ctx
from novacron.api.errors import ERROR_RESPONSES
from novacron.api.schemas import (
    ActionOut,
    AuditOut,
    HealthOut,
    IncidentDetailOut,
    IncidentOut,
    PendingApprovalOut,
    TargetOut,
    TimelineOut,
    WhoAmIOut,
)
from novacron.api.status_view import StatusOut, fleet_status, store_condition
from novacron.api.views import acknowledged_by, postmortem_for
from novacron.incidents.postmortem import render_html, render_markdown
from novacron.model import IncidentStatus

__all__ = ["router"]

router = APIRouter(responses=ERROR_RESPONSES)
Ctx = Annotated[ApiContext, Depends(get_ctx)]
Limit = Annotated[int, Query(ge=1, le=1000, description="At most this many, newest first.")]
_KILL_SWITCH_KEY = "autonomous_enabled"


@router.get("/health", tags=["status"])
async def health(ctx: Ctx) -> HealthOut:
    """Liveness; needs no token (for load balancers and probes)."""
    c = ctx.controller
    if c is None:
        return HealthOut(
            controller=False, autonomous=bool(ctx.store.get_setting(_KILL_SWITCH_KEY, True)), config_version=None
        )
    store = store_condition(c.store)
    return HealthOut(
        status="degraded" if store is not None and store.degraded else "ok",
        controller=True,
        autonomous=c.gate.enabled,
        config_version=c.config_version,
        store=store,
    )


@router.get(
    "/metrics",
    tags=["status"],
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "Prometheus text"}},
)
async def metrics(ctx: Ctx) -> Response:
    """Prometheus text exposition of the controller's metrics; needs no token."""
    registry = ctx.controller.metrics.registry if ctx.controller is not None else ctx.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/whoami", tags=["status"])
async def whoami(who: Viewer) -> WhoAmIOut:
    """The calling token's name and role (the dashboard shows only the buttons a role may use)."""
    return WhoAmIOut(name=who.name, role=who.role.value)


@router.get("/status", tags=["fleet"])
async def status(ctx: Ctx, _who: Viewer) -> StatusOut:
    """The controller's liveness and every target's state, pids, uptime, restarts and last fault.

    The same document as ``novacron status --json``, read from what the controller wrote.
    """
    report = fleet_status(ctx.store, now=ctx.clock.now(), in_process=ctx.controller is not None)
    if ctx.controller is not None:  # the live condition, which a failing store cannot hold
        report.controller.store = store_condition(ctx.controller.store)
    return report


@router.get("/targets", tags=["fleet"])
async def targets(ctx: Ctx, _who: Viewer) -> list[TargetOut]:
    """Every target: health, replicas running/desired, its open incident."""
    if ctx.controller is not None:
        return [
            TargetOut(
                target=v.target,
                health=v.health.value,
                running=v.running,
                desired=v.desired,
                incident=v.incident.id if v.incident else None,
            )
            for v in ctx.controller.status()
        ]
    open_by_target: dict[str, str] = {inc.target: inc.id for inc in ctx.store.open_incidents()}
    return [
        TargetOut(
            target=r.target,
            health=r.health,
            running=r.running,
            desired=r.desired,
            incident=open_by_target.get(r.target),
        )
        for r in ctx.store.target_statuses()
    ]


@router.get("/incidents", tags=["incidents"])
async def incidents(
    ctx: Ctx, _who: Viewer, status: IncidentStatus | None = None, limit: Limit = 100
) -> list[IncidentOut]:
    """Incidents, newest first, optionally of one status."""
    return [IncidentOut.of(i) for i in ctx.store.incidents(status=status, limit=limit)]


@router.get("/incidents/{incident_id}", tags=["incidents"])
async def incident(ctx: Ctx, _who: Viewer, incident_id: str, request: Request) -> IncidentDetailOut:
    """One incident with its timeline, actions and a link to its post-mortem."""
    inc = ctx.store.incident(incident_id)
    return IncidentDetailOut(
        incident=IncidentOut.of(inc),
        timeline=[TimelineOut.of(ev) for ev in ctx.store.timeline(incident_id)],
        actions=[ActionOut.of(r) for r in ctx.store.actions(incident_id=incident_id, limit=1000)],
        acknowledged_by=acknowledged_by(ctx.store, incident_id),
        postmortem_url=str(request.url_for("postmortem", incident_id=incident_id).path),
    )


@router.get(
    "/incidents/{incident_id}/postmortem",
    tags=["incidents"],
    name="postmortem",
    responses={
        200: {
            "content": {"text/markdown": {"schema": {"type": "string"}}, "text/html": {"schema": {"type": "string"}}},
            "description": "The post-mortem",
        }
    },
)
async def postmortem(
    ctx: Ctx,
    _who: Viewer,
    incident_id: str,
    request: Request,
    format: Annotated[Literal["markdown", "html"] | None, Query(description="Overrides the Accept header.")] = None,
) -> Response:
    """The post-mortem, as Markdown (default) or HTML (``format=html`` or ``Accept: text/html``)."""
    pm = postmortem_for(ctx.store, incident_id)
    wants_html = format == "html" or (format is None and "text/html" in request.headers.get("accept", ""))
    if wants_html:
        return Response(render_html(pm), media_type="text/html; charset=utf-8")
    return Response(render_markdown(pm), media_type="text/markdown; charset=utf-8")


@router.get("/actions", tags=["actions"])
async def actions(ctx: Ctx, _who: Viewer, incident_id: str | None = None, limit: Limit = 100) -> list[ActionOut]:
    """Actions, newest first, optionally of one incident."""
    return [ActionOut.of(r) for r in ctx.store.actions(incident_id=incident_id, limit=limit)]


@router.get("/approvals", tags=["actions"])
async def approvals(ctx: Ctx, _who: Viewer) -> list[PendingApprovalOut]:
    """Actions waiting for a human's approval, the whole fleet's, each with the node that asked."""
    return [PendingApprovalOut.of(r) for r in await approvals_of(ctx).fleet_pending()]


@router.get("/audit", tags=["audit"])
async def audit(ctx: Ctx, _who: Viewer, limit: Limit = 200) -> list[AuditOut]:
    """The audit trail, newest first: every mutating call, who made it, and its result."""
    return [AuditOut.of(e) for e in ctx.store.audit_log(limit=limit)]
