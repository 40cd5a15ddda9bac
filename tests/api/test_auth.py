"""Bearer tokens: stored hashed, checked by role, and every mutating call audited."""

from __future__ import annotations

import time

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from novacron.errors import InputError, NotFoundError
from novacron.runtime.controller import Controller
from novacron.store import Store
from novacron.store.tokens import Role, TokenStore

from .conftest import Tokens, bearer


async def test_missing_and_invalid_tokens_get_401(client: httpx.AsyncClient, tokens: Tokens) -> None:
    missing = await client.get("/incidents")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    forged = tokens[Role.ADMIN][:-4] + "AAAA"
    for bad in ("nope", "nvc_000000000000.secret", forged):
        r = await client.get("/incidents", headers=bearer(bad))
        assert r.status_code == 401, bad


async def test_roles_are_ordered_viewer_operator_admin(client: httpx.AsyncClient, tokens: Tokens) -> None:
    assert (await client.get("/targets", headers=bearer(tokens[Role.VIEWER]))).status_code == 200
    for role, expected in ((Role.VIEWER, 403), (Role.OPERATOR, 403), (Role.ADMIN, 200)):
        r = await client.post("/autonomous/disable", headers=bearer(tokens[role]))
        assert r.status_code == expected, role
    r = await client.post("/heartbeat/nobody", headers=bearer(tokens[Role.VIEWER]))
    assert r.status_code == 403
    assert "operator role required" in r.json()["detail"]


async def test_health_and_metrics_need_no_token(client: httpx.AsyncClient) -> None:
    health = await client.get("/health")
    body = health.json()
    store = body.pop("store")
    assert body == {"status": "ok", "controller": True, "autonomous": True, "config_version": 1}
    assert store is None or store["degraded"] is False
    metrics = await client.get("/metrics")
    assert metrics.status_code == 200
    assert "novacron_autonomous_enabled 1.0" in metrics.text


async def test_every_mutating_call_is_audited_with_who_and_result(
    client: httpx.AsyncClient, tokens: Tokens, controller: Controller
) -> None:
    await client.post("/autonomous/disable", headers=bearer(tokens[Role.ADMIN]))
    await client.post("/autonomous/disable", headers=bearer(tokens[Role.OPERATOR]))  # forbidden
    await client.post("/incidents/inc-missing/ack", headers=bearer(tokens[Role.OPERATOR]))
    await client.post("/approvals/act-missing", json={"decision": "approve"}, headers=bearer(tokens[Role.OPERATOR]))
    r = await client.get("/audit", headers=bearer(tokens[Role.VIEWER]))
    rows = [(e["actor"], e["verb"], e["subject"], e["result"]) for e in reversed(r.json())]
    assert rows == [
        ("admin-1", "autonomous.disable", "fleet", "ok"),
        ("operator-1", "api.post /autonomous/disable", "/autonomous/disable", "forbidden"),
        ("operator-1", "api.incident.ack", "inc-missing", "not_found"),
        ("operator-1", "api.approval.approve", "act-missing", "not_found"),
    ]
    assert all(e["time"] > 0 for e in r.json())
    assert controller.gate.enabled is False


def test_tokens_are_stored_only_as_hashes(tmp_path: object) -> None:
    store = Store.open("sqlite:///:memory:")
    tokens = TokenStore(store)
    record, secret = tokens.create("ci", Role.OPERATOR, now=1.0)
    assert secret.startswith(f"nvc_{record.id}.")
    with store.engine.connect() as conn:
        dump = "\n".join(conn.connection.iterdump())
    assert secret.split(".", 1)[1] not in dump
    assert tokens.verify(secret) == record
    tokens.revoke("ci", now=2.0)
    assert tokens.verify(secret) is None
    with pytest.raises(NotFoundError):
        tokens.revoke("ci", now=3.0)


def test_token_names_and_roles_are_validated() -> None:
    tokens = TokenStore(Store.open("sqlite:///:memory:"))
    with pytest.raises(InputError, match="role"):
        tokens.create("x", "root", now=time.time())
    tokens.create("x", "viewer", now=time.time())
    with pytest.raises(InputError, match="already exists"):
        tokens.create("x", "admin", now=time.time())
    with pytest.raises(InputError, match="name"):
        tokens.create("bad name!", "admin", now=time.time())


_STORE = TokenStore(Store.open("sqlite:///:memory:"))
_STORE.create("prop", Role.ADMIN, now=1.0)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_arbitrary_strings_never_verify(guess: str) -> None:
    assert _STORE.verify(guess) is None
