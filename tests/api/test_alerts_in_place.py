"""Alerts in their place: tracked and resolved, never healed by themselves; nothing waits on what cannot apply."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from pathlib import Path

import httpx

from novacron.api import create_app
from novacron.demo.fleet import free_port_block
from novacron.healing.catalog import new_action
from novacron.model import ActionKind, ActionStatus, IncidentStatus, TargetId
from novacron.runtime.controller import Controller
from novacron.store.tokens import Role, TokenStore
from novacron.testing import http_service_target

from .conftest import alert, bearer, eventually, now_iso, start_controller, stop_controller, webhook


async def _post(c: Controller, body: dict[str, object]) -> httpx.Response:
    """Deliver a webhook with a fresh operator token."""
    _, token = TokenStore(c.store).create(f"op-{uuid.uuid4().hex[:8]}", Role.OPERATOR, now=time.time())
    transport = httpx.ASGITransport(app=create_app(c))
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
        return await client.post("/webhooks/alertmanager", json=body, headers=bearer(token))


async def test_an_alert_naming_a_healthy_fleet_target_does_not_restart_it(tmp_path: Path) -> None:
    c = await start_controller(tmp_path, http_service_target("api", free_port_block(2)))
    try:
        await eventually(lambda: c.health.is_healthy("api"), what="api healthy")
        pids = c.actuator.pids("api")
        started = now_iso()
        r = await _post(c, webhook(alert(target="api", starts_at=started)))
        assert r.status_code == 200, r.text
        [inc_id] = r.json()["opened"]
        await c.wait_idle(2.0)
        await asyncio.sleep(0.3)  # give a wrongly started ladder time to act
        assert c.actuator.pids("api") == pids, "the alert alone restarted the target"
        assert c.store.actions() == []
        resolved = alert(target="api", starts_at=started, status="resolved")
        assert (await _post(c, webhook(resolved))).json()["resolved"] == [inc_id]
        assert c.store.incident(inc_id).status is IncidentStatus.RESOLVED
    finally:
        await stop_controller(c)


async def test_a_fleet_alert_incident_is_healed_once_the_own_checks_find_the_fault(tmp_path: Path) -> None:
    c = await start_controller(tmp_path, http_service_target("api", free_port_block(2)))
    try:
        await eventually(lambda: c.health.is_healthy("api"), what="api healthy")
        [inc_id] = (await _post(c, webhook(alert(target="api", starts_at=now_iso())))).json()["opened"]
        os.kill(c.actuator.pids("api")[0], signal.SIGKILL)  # now the controller's own sensors see a crash
        await eventually(lambda: c.store.incident(inc_id).status is IncidentStatus.RESOLVED, what="healed")
        assert [a.action.kind for a in c.store.actions(incident_id=inc_id)] == [ActionKind.RESTART]
    finally:
        await stop_controller(c)


async def test_after_a_restart_an_outside_alert_is_not_healed_and_holds_no_slot(tmp_path: Path) -> None:
    port = free_port_block(2)
    policy = {"blast_radius": 0.5, "verify_timeout_s": 10}
    c = await start_controller(tmp_path, http_service_target("api", port), **policy)
    await eventually(lambda: c.health.is_healthy("api"), what="api healthy")
    started = now_iso()
    [outside] = (await _post(c, webhook(alert(target="checkout", starts_at=started)))).json()["opened"]
    await c.stop(stop_targets=False)

    again = await start_controller(tmp_path, http_service_target("api", port), **policy)
    try:
        assert again.flow.healing == 0, "no healer for an incident outside the fleet"
        os.kill(again.actuator.pids("api")[0], signal.SIGKILL)
        await eventually(
            lambda: any(i.target == "api" and i.status is IncidentStatus.RESOLVED for i in again.store.incidents()),
            timeout=10,
            what="api healed without waiting for a slot",
        )
        assert again.store.actions(incident_id=outside) == []
        assert again.store.incident(outside).status is IncidentStatus.OPEN
        resolved = alert(target="checkout", starts_at=started, status="resolved")
        assert (await _post(again, webhook(resolved))).json()["resolved"] == [outside]
    finally:
        await stop_controller(again)


async def test_an_action_on_an_unknown_target_is_refused_at_planning(tmp_path: Path) -> None:
    c = await start_controller(tmp_path)
    try:
        result = await c.executor.execute(new_action(ActionKind.RESTART, TargetId("checkout"), key="k/0/restart"))
        assert result.status is ActionStatus.BLOCKED
        assert "no target 'checkout'" in result.detail
        assert [a.status for a in c.store.actions()] == [ActionStatus.BLOCKED]
    finally:
        await stop_controller(c)
