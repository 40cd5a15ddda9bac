"""Hostile input to the API: typed action params, bounded nesting, replica bounds, audited refusals."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from novacron.api import create_app
from novacron.demo.fleet import free_port_block
from novacron.model import ActionStatus
from novacron.runtime.controller import Controller
from novacron.store import Store
from novacron.store.tokens import Role
from novacron.testing import http_service_target
from tests.postgres import pg_url  # noqa: F401 - a fixture

from .conftest import Tokens, alert, bearer, eventually, make_tokens, start_controller, stop_controller, webhook

Live = tuple[Controller, httpx.AsyncClient, Tokens]


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[Live]:
    """A controller supervising one real HTTP service (one replica), with its API."""
    c = await start_controller(tmp_path, http_service_target("api", free_port_block(2)))
    transport = httpx.ASGITransport(app=create_app(c, max_body_bytes=1 << 20))
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
        yield c, client, make_tokens(c)
    await stop_controller(c)


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"x": value}
    return value


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"replica": [1]}, "replica"),
        ({"replica": {}}, "replica"),
        ({"replica": -1}, "replica"),
        ({"replica": True}, "replica"),
        ({"replicas": [0, "1"]}, "replicas"),
        ({"count": 0}, "count"),
        ({"weights": "r0"}, "weights"),  # was a 500: the actuator took a string for a mapping
        ({"weights": {"r0": 257}}, "weights"),
        ({"weights": {}}, "weights"),
        ({"server": 0}, "server"),
        (_nested(500), "x"),
    ],
)
async def test_bad_params_are_a_422_naming_the_field_and_nothing_is_applied(
    live: Live, params: dict[str, Any], field: str
) -> None:
    c, client, tokens = live
    body = {"target": "api", "action": "restart", "params": params, "wait_s": 5}
    r = await client.post("/autonomous/heal", json=body, headers=bearer(tokens[Role.OPERATOR]))
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"][:3] == ["body", "params", field]
    assert c.store.actions() == []
    [entry] = [e for e in c.store.audit_log() if e.result == "invalid"]
    assert (entry.actor, entry.verb) == ("operator-1", "api.post /autonomous/heal")
    assert str(entry.detail["field"]).startswith(f"params.{field}")


async def test_a_replica_the_target_does_not_run_is_refused_not_started(live: Live) -> None:
    c, client, tokens = live
    body = {"target": "api", "action": "start", "params": {"replica": 1}}
    r = await client.post("/autonomous/heal", json=body, headers=bearer(tokens[Role.OPERATOR]))
    assert (r.status_code, r.json()["field"]) == (422, "params.replica")
    assert "runs replicas 0..0" in r.json()["detail"]
    assert c.store.actions() == []
    assert len(c.actuator.pids("api")) <= 1


async def test_null_replicas_mean_every_replica(live: Live) -> None:
    c, client, tokens = live
    await eventually(lambda: c.health.is_healthy("api"), what="api healthy")
    body = {"target": "api", "action": "start", "params": {"replicas": None}, "wait_s": 10}
    r = await client.post("/autonomous/heal", json=body, headers=bearer(tokens[Role.OPERATOR]))
    assert r.status_code == 200, r.text
    assert all(a.status is not ActionStatus.APPLYING for a in c.store.actions())


async def test_a_body_nested_past_the_parser_is_bad_input_not_a_500(live: Live) -> None:
    c, client, tokens = live
    deep = '{"target": "api", "action": "restart", "params": ' + "[" * 100_000 + "]" * 100_000 + "}"
    headers = {**bearer(tokens[Role.OPERATOR]), "content-type": "application/json"}
    r = await client.post("/autonomous/heal", content=deep, headers=headers)
    assert r.status_code in (400, 422), r.text
    assert c.store.actions() == []


async def test_refusals_401_403_413_are_audited(live: Live) -> None:
    c, client, tokens = live
    assert (await client.post("/autonomous/disable")).status_code == 401
    long_path = "/targets/" + "t" * 5000 + "/unquarantine"
    assert (await client.post(long_path, headers=bearer(tokens[Role.VIEWER]))).status_code == 403
    big = {"target": "api", "action": "restart", "params": {"path": "p" * (2 << 20)}}
    assert (await client.post("/autonomous/heal", json=big, headers=bearer(tokens[Role.OPERATOR]))).status_code == 413
    results = {e.result: e for e in c.store.audit_log()}
    assert {"unauthorized", "forbidden", "too_large"} <= results.keys()
    assert results["forbidden"].actor == "viewer-1"
    assert results["forbidden"].verb.endswith("…")


async def test_on_postgresql_long_ids_and_paths_fit(pg_url: str, tmp_path: Path) -> None:  # noqa: F811
    from novacron.testing import fleet

    c = Controller(fleet(store_url=pg_url), workdir=tmp_path, seed=1)
    await c.start()
    try:
        tokens = make_tokens(c)
        transport = httpx.ASGITransport(app=create_app(c))
        async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
            op = bearer(tokens[Role.OPERATOR])
            body = webhook(alert(target="checkout", fingerprint="f" * 300))
            r = await client.post("/webhooks/alertmanager", json=body, headers=op)
            assert r.status_code == 200, r.text
            [inc_id] = r.json()["opened"]
            [fault] = c.store.faults(inc_id)
            assert len(fault["id"]) <= 128
            long_path = "/targets/" + "t" * 5000 + "/unquarantine"
            assert (await client.post(long_path, headers=bearer(tokens[Role.VIEWER]))).status_code == 403
            assert any(e.result == "forbidden" for e in c.store.audit_log())
    finally:
        await c.stop()


def test_store_errors_never_carry_the_sql(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'n.db'}")
    store.engine.dispose()
    (tmp_path / "n.db").unlink()
    (tmp_path / "n.db").mkdir()  # the database is now a folder: every statement fails
    from novacron.errors import StoreError

    with pytest.raises(StoreError) as err:
        store.audit(now=1.0, actor="a", verb="v", subject="s", result="r")
    assert "INSERT" not in str(err.value)
    assert "audit" not in str(err.value).lower().replace("store write failed", "")
