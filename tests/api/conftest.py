"""A real controller on a temporary SQLite store, its API over httpx's ASGI transport, and tokens."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from novacron.api import create_app
from novacron.runtime.controller import Controller
from novacron.settings import TargetSpec
from novacron.store.tokens import Role, TokenStore
from novacron.testing import fleet

Tokens = dict[Role, str]


async def start_controller(tmp_path: Path, *targets: TargetSpec, **policy: Any) -> Controller:
    """A started controller over ``targets`` with its store in ``tmp_path``."""
    spec = fleet(*targets, store_url=f"sqlite:///{tmp_path / 'n.db'}", **policy)
    c = Controller(spec, workdir=tmp_path, seed=1)
    await c.start()
    return c


async def stop_controller(c: Controller) -> None:
    """Stop it and anything it left running."""
    await asyncio.wait_for(c.stop(), timeout=15)
    for p in psutil.Process().children(recursive=True):
        if p.is_running() and "novacron.demo.service" in " ".join(p.cmdline()):
            p.kill()


@pytest.fixture
async def controller(tmp_path: Path) -> AsyncIterator[Controller]:
    """A controller over an empty fleet (alerts and manual calls need no processes)."""
    c = await start_controller(tmp_path)
    yield c
    await stop_controller(c)


def make_tokens(c: Controller) -> Tokens:
    """One token per role."""
    store = TokenStore(c.store)
    return {role: store.create(f"{role.value}-1", role, now=time.time())[1] for role in Role}


@pytest.fixture
def tokens(controller: Controller) -> Tokens:
    """Viewer, operator and admin tokens on the controller's store."""
    return make_tokens(controller)


@pytest.fixture
async def client(controller: Controller) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client speaking to the controller's API in-process."""
    transport = httpx.ASGITransport(app=create_app(controller))
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as c:
        yield c


def bearer(token: str) -> dict[str, str]:
    """The Authorization header for ``token``."""
    return {"Authorization": f"Bearer {token}"}


def alert(
    name: str = "HighLatency",
    *,
    target: str = "checkout",
    status: str = "firing",
    starts_at: str = "2026-11-21T10:00:00Z",
    fingerprint: str | None = "fp-1",
) -> dict[str, Any]:
    """One v4 alert."""
    a: dict[str, Any] = {
        "status": status,
        "labels": {"alertname": name, "target": target, "severity": "page"},
        "annotations": {"summary": f"{name} on {target}"},
        "startsAt": starts_at,
        "endsAt": "2026-11-21T10:05:00Z" if status == "resolved" else "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus.local/graph",
    }
    if fingerprint is not None:
        a["fingerprint"] = fingerprint
    return a


def webhook(*alerts: dict[str, Any]) -> dict[str, Any]:
    """A v4 webhook body around ``alerts``."""
    firing = any(a["status"] == "firing" for a in alerts)
    return {
        "version": "4",
        "groupKey": '{}:{alertname="HighLatency"}',
        "truncatedAlerts": 0,
        "status": "firing" if firing else "resolved",
        "receiver": "novacron",
        "groupLabels": {"alertname": "HighLatency"},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.local",
        "alerts": list(alerts),
    }


def now_iso() -> str:
    """The current time as Alertmanager writes it."""
    return dt.datetime.now(tz=dt.UTC).isoformat().replace("+00:00", "Z")


async def eventually(pred: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    """Wait until ``pred()`` holds, or fail naming ``what``."""
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)
