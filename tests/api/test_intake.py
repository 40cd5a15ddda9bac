"""Alertmanager intake (idempotent under resends, resolutions close the loop) and HTTP heartbeats."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from novacron.model import IncidentStatus, TargetId
from novacron.runtime.controller import Controller
from novacron.settings import HeartbeatCheck
from novacron.store.tokens import Role

from .conftest import Tokens, alert, bearer, webhook


async def test_the_same_alert_sent_200_times_is_one_incident(
    client: httpx.AsyncClient, tokens: Tokens, controller: Controller
) -> None:
    body = webhook(alert())
    first = await client.post("/webhooks/alertmanager", json=body, headers=bearer(tokens[Role.OPERATOR]))
    assert first.status_code == 200
    opened = first.json()["opened"]
    assert len(opened) == 1
    for _ in range(199):
        r = await client.post("/webhooks/alertmanager", json=body, headers=bearer(tokens[Role.OPERATOR]))
        assert r.json() == {"received": 1, "opened": [], "repeated": 1, "resolved": []}
    incidents = controller.store.incidents(limit=100)
    assert [i.id for i in incidents] == opened
    assert incidents[0].target == "checkout"  # not in the fleet: still an incident
    assert incidents[0].kind.value == "alert"
    assert incidents[0].summary == "alert on checkout: HighLatency: HighLatency on checkout"


async def test_a_resolved_alert_closes_its_incident(
    client: httpx.AsyncClient, tokens: Tokens, controller: Controller
) -> None:
    h = bearer(tokens[Role.OPERATOR])
    opened = (await client.post("/webhooks/alertmanager", json=webhook(alert()), headers=h)).json()["opened"]
    r = await client.post("/webhooks/alertmanager", json=webhook(alert(status="resolved")), headers=h)
    assert r.json()["resolved"] == opened
    inc = controller.store.incident(opened[0])
    assert inc.status is IncidentStatus.RESOLVED
    assert [e.kind for e in controller.store.timeline(inc.id)] == ["detected", "priority", "resolved"]
    # A late duplicate of the firing notification does not reopen it.
    again = await client.post("/webhooks/alertmanager", json=webhook(alert()), headers=h)
    assert again.json()["opened"] == []
    assert len(controller.store.incidents()) == 1


async def test_a_restarted_api_does_not_file_an_open_episode_twice(controller: Controller, tokens: Tokens) -> None:
    from novacron.api import create_app

    h = bearer(tokens[Role.OPERATOR])
    for _ in range(2):  # two API instances, each with a fresh deduplicator
        transport = httpx.ASGITransport(app=create_app(controller))
        async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as c:
            await c.post("/webhooks/alertmanager", json=webhook(alert()), headers=h)
    [inc] = controller.store.incidents()
    assert inc.fault_count == 1


async def test_malformed_webhooks_name_the_field_and_change_nothing(
    client: httpx.AsyncClient, tokens: Tokens, controller: Controller
) -> None:
    h = bearer(tokens[Role.OPERATOR])
    bad_time = webhook(alert(), alert(fingerprint="fp-2", starts_at="yesterday"))
    cases = {
        "alerts[1].startsAt": bad_time,
        "version": {**webhook(alert()), "version": "3"},
        "alerts": {k: v for k, v in webhook(alert()).items() if k != "alerts"},
    }
    for field, body in cases.items():
        r = await client.post("/webhooks/alertmanager", json=body, headers=h)
        assert r.status_code == 400, field
        assert r.json()["field"] == field
    r = await client.post(
        "/webhooks/alertmanager", content=b"{not json", headers={**h, "content-type": "application/json"}
    )
    assert (r.status_code, r.json()["field"]) == (400, "body")
    assert controller.store.incidents() == []  # the good first alert of a bad payload was not applied


async def test_oversized_bodies_are_refused_before_parsing(
    client: httpx.AsyncClient, tokens: Tokens, controller: Controller
) -> None:
    huge = webhook(*(alert(fingerprint=f"fp-{i}", target=f"t{i}" + "x" * 100) for i in range(6000)))
    r = await client.post("/webhooks/alertmanager", json=huge, headers=bearer(tokens[Role.OPERATOR]))
    assert r.status_code == 413
    assert r.json()["field"] == "body"

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(20):
            yield b" " * 100_000

    r = await client.post("/webhooks/alertmanager", content=chunks(), headers=bearer(tokens[Role.OPERATOR]))
    assert r.status_code == 413
    assert controller.store.incidents() == []


async def test_heartbeats_over_http(client: httpx.AsyncClient, tokens: Tokens, controller: Controller) -> None:
    controller.heartbeats.register(TargetId("worker"), 0, HeartbeatCheck(expected_interval_s=1.0))
    h = bearer(tokens[Role.OPERATOR])
    ok = await client.post("/heartbeat/worker", headers=h)
    assert ok.json() == {"ok": True, "detail": "beat from worker"}
    assert controller.heartbeats.phi("worker") < 1
    missing = await client.post("/heartbeat/ghost", headers=h)
    assert (missing.status_code, missing.json()["field"]) == (404, "name")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=10),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
        max_leaves=12,
    )
)
async def test_arbitrary_json_is_a_4xx_never_a_crash(
    client: httpx.AsyncClient, tokens: Tokens, payload: object
) -> None:
    r = await client.post(
        "/webhooks/alertmanager",
        content=json.dumps(payload),
        headers={**bearer(tokens[Role.OPERATOR]), "content-type": "application/json"},
    )
    assert r.status_code == 400
    assert r.json()["field"]
