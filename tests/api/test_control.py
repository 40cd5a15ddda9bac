"""Control through the API: kill switch, manual heal on a real process, rollback, approvals, acks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from novacron.api import create_app
from novacron.demo.fleet import free_port_block
from novacron.healing.approvals import Answer
from novacron.healing.catalog import new_action
from novacron.model import ActionKind, ActionStatus, TargetId
from novacron.runtime.controller import Controller
from novacron.store import Store, approvals
from novacron.store.tokens import Role
from novacron.testing import http_service_target

from .conftest import Tokens, alert, bearer, eventually, make_tokens, start_controller, stop_controller, webhook


async def test_the_kill_switch_round_trip(client: httpx.AsyncClient, tokens: Tokens, controller: Controller) -> None:
    h = bearer(tokens[Role.ADMIN])
    off = await client.post("/autonomous/disable", headers=h)
    assert off.json() == {"autonomous": False, "by": "admin-1"}
    assert controller.gate.enabled is False
    assert controller.store.get_setting("autonomous_enabled") is False
    assert (await client.get("/health")).json()["autonomous"] is False
    on = await client.post("/autonomous/enable", headers=h)
    assert on.json()["autonomous"] is True
    assert controller.gate.enabled is True


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[tuple[Controller, httpx.AsyncClient, Tokens]]:
    """A controller supervising one real HTTP service, with its API."""
    c = await start_controller(tmp_path, http_service_target("api", free_port_block(2)))
    transport = httpx.ASGITransport(app=create_app(c))
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
        yield c, client, make_tokens(c)
    await stop_controller(c)


async def test_a_manual_heal_runs_through_the_executor_and_is_audited(
    live: tuple[Controller, httpx.AsyncClient, Tokens],
) -> None:
    c, client, tokens = live
    await eventually(lambda: c.health.is_healthy("api"), what="api healthy")
    old = c.actuator.pids("api")
    r = await client.post(
        "/autonomous/heal", json={"target": "api", "action": "restart"}, headers=bearer(tokens[Role.OPERATOR])
    )
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["status"], out["verified"], out["kind"]) == ("verified", True, "restart")
    assert c.actuator.pids("api") != old
    [rec] = (await client.get("/actions", headers=bearer(tokens[Role.VIEWER]))).json()
    assert (rec["id"], rec["requested_by"], rec["status"]) == (out["action_id"], "operator-1", "verified")
    audit = (await client.get("/audit", headers=bearer(tokens[Role.VIEWER]))).json()
    assert ("operator-1", "api.heal.restart", "api", "verified") in [
        (e["actor"], e["verb"], e["subject"], e["result"]) for e in audit
    ]
    targets = (await client.get("/targets", headers=bearer(tokens[Role.VIEWER]))).json()
    assert targets[0]["target"] == "api"
    assert targets[0]["desired"] == 1


async def test_bad_control_requests_name_the_field(live: tuple[Controller, httpx.AsyncClient, Tokens]) -> None:
    c, client, tokens = live
    h = bearer(tokens[Role.OPERATOR])
    cases = [
        ("/autonomous/heal", {"target": "nope", "action": "restart"}, 404, "target"),
        ("/autonomous/rollback", {"target": "api"}, 409, "target"),  # no earlier spec version
        ("/autonomous/rollback", {"action_id": "act-nope"}, 404, "action_id"),
    ]
    for path, body, status, field in cases:
        r = await client.post(path, json=body, headers=h)
        assert (r.status_code, r.json().get("field")) == (status, field), (path, body, r.text)
    for body in ({}, {"target": "api", "action_id": "x"}, {"target": "api", "action": "escalate"}):
        path = "/autonomous/heal" if "action" in body else "/autonomous/rollback"
        assert (await client.post(path, json=body, headers=h)).status_code == 422, body
    unknown = await client.post("/autonomous/heal", json={"target": "api", "action": "reboot"}, headers=h)
    assert unknown.status_code == 422
    assert unknown.json()["detail"][0]["loc"] == ["body", "action"]
    extra = await client.post("/autonomous/heal", json={"target": "api", "action": "restart", "x": 1}, headers=h)
    assert extra.status_code == 422
    assert extra.json()["detail"][0]["loc"] == ["body", "x"]
    assert c.store.actions() == []  # nothing half-applied


async def test_pending_approvals_are_listed_and_decided(
    client: httpx.AsyncClient, tokens: Tokens, controller: Controller
) -> None:
    action = new_action(ActionKind.REPLACE, TargetId("db"), key="inc-1/replace")
    waiting = controller.approvals.request(action)
    listed = (await client.get("/approvals", headers=bearer(tokens[Role.VIEWER]))).json()
    assert [(a["id"], a["kind"], a["target"]) for a in listed] == [(action.id, "replace", "db")]
    r = await client.post(f"/approvals/{action.id}", json={"decision": "reject"}, headers=bearer(tokens[Role.OPERATOR]))
    assert r.json() == {"action_id": action.id, "decision": "reject", "by": "operator-1"}
    assert await asyncio.wait_for(waiting, 1) == Answer(False, "operator-1")
    bad = await client.post(
        f"/approvals/{action.id}", json={"decision": "maybe"}, headers=bearer(tokens[Role.OPERATOR])
    )
    assert bad.status_code == 422


async def test_incident_detail_ack_and_postmortem(
    client: httpx.AsyncClient, tokens: Tokens, controller: Controller
) -> None:
    op, view = bearer(tokens[Role.OPERATOR]), bearer(tokens[Role.VIEWER])
    [inc_id] = (await client.post("/webhooks/alertmanager", json=webhook(alert()), headers=op)).json()["opened"]
    assert (await client.post(f"/incidents/{inc_id}/ack", headers=op)).status_code == 200
    again = await client.post(f"/incidents/{inc_id}/ack", headers=op)
    assert again.status_code == 200
    assert again.json()["detail"].startswith("already acknowledged by operator-1 at ")
    detail = (await client.get(f"/incidents/{inc_id}", headers=view)).json()
    assert detail["acknowledged_by"] == "operator-1"
    assert [e["kind"] for e in detail["timeline"]] == ["detected", "priority", "acknowledged"]
    assert detail["postmortem_url"] == f"/incidents/{inc_id}/postmortem"
    md = await client.get(detail["postmortem_url"], headers=view)
    assert md.headers["content-type"].startswith("text/markdown")
    assert md.text.startswith(f"# Post-mortem: incident {inc_id}")
    assert "## Timeline" in md.text
    assert "acknowledged by operator-1" in md.text
    html = await client.get(detail["postmortem_url"], headers={**view, "accept": "text/html"})
    assert html.headers["content-type"].startswith("text/html")
    assert "<h2>Timeline</h2>" in html.text
    listed = (await client.get("/incidents", params={"status": "open", "limit": 5}, headers=view)).json()
    assert [i["id"] for i in listed] == [inc_id]
    assert (await client.get("/incidents", params={"status": "resolved"}, headers=view)).json() == []
    bad = await client.get("/incidents", params={"status": "bogus"}, headers=view)
    assert (bad.status_code, bad.json()["detail"][0]["loc"]) == (422, ["query", "status"])
    assert (await client.get("/incidents/inc-nope", headers=view)).status_code == 404


async def test_the_api_alone_serves_reads_and_approvals_and_refuses_control_with_503(tmp_path: Path) -> None:
    c = await start_controller(tmp_path)
    tokens = make_tokens(c)
    transport = httpx.ASGITransport(app=create_app(c))
    async with httpx.AsyncClient(transport=transport, base_url="http://a") as client:
        await client.post("/webhooks/alertmanager", json=webhook(alert()), headers=bearer(tokens[Role.OPERATOR]))
    await stop_controller(c)
    store = Store.open(f"sqlite:///{tmp_path / 'n.db'}")
    transport = httpx.ASGITransport(app=create_app(store))
    async with httpx.AsyncClient(transport=transport, base_url="http://a") as client:
        assert (await client.get("/health")).json()["controller"] is False
        listed = await client.get("/incidents", headers=bearer(tokens[Role.VIEWER]))
        assert len(listed.json()) == 1
        ack = await client.post(f"/incidents/{listed.json()[0]['id']}/ack", headers=bearer(tokens[Role.OPERATOR]))
        assert ack.status_code == 200
        for path, body in (("/autonomous/disable", None), ("/autonomous/heal", {"target": "a", "action": "restart"})):
            r = await client.post(path, json=body, headers=bearer(tokens[Role.ADMIN]))
            assert r.status_code == 503
            assert "novacron run" in r.json()["detail"]
        # approvals are stored: the API alone lists and decides them (the owner reads the decision)
        action = new_action(ActionKind.REPLACE, TargetId("a"), key="inc-1/0/replace")
        store.claim_action(action, ActionStatus.AWAITING_APPROVAL, now=1.0)
        approvals.run_sync(store, lambda conn: approvals.ask(conn, action.id, node="n1", now=2.0))
        listed = (await client.get("/approvals", headers=bearer(tokens[Role.VIEWER]))).json()
        assert [(a["id"], a["asked_by"], a["asked_at"]) for a in listed] == [(action.id, "n1", 2.0)]
        op = bearer(tokens[Role.OPERATOR])
        assert (
            await client.post(f"/approvals/{action.id}", json={"decision": "approve"}, headers=op)
        ).status_code == 200
        again = await client.post(f"/approvals/{action.id}", json={"decision": "reject"}, headers=op)
        assert again.status_code == 409
        assert (
            again.json()["detail"]
            == f"action {action.id!r} was already approved by operator-1 (on api); nothing changed"
        )
        assert (await client.get("/approvals", headers=bearer(tokens[Role.VIEWER]))).json() == []
    store.close()
