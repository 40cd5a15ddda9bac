"""A real Alertmanager delivers to the API with a bearer token: one incident, then resolved.

Needs the Debian package ``prometheus-alertmanager``; without it this test fails with the
install hint instead of skipping.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from novacron.model import IncidentStatus
from novacron.runtime.controller import Controller
from novacron.store.tokens import Role

from ..binaries import alertmanager
from .servers import on_loop, served


@contextmanager
def _alertmanager(tmp: Path, webhook_url: str, token: str) -> Iterator[str]:
    webhook = (
        f"      - url: '{webhook_url}'\n"
        "        send_resolved: true\n"
        "        http_config:\n"
        "          authorization:\n"
        f"            credentials: '{token}'\n"
    )
    with alertmanager(tmp, webhook) as url:
        yield url


def _iso(t: float) -> str:
    return dt.datetime.fromtimestamp(t, tz=dt.UTC).isoformat()


def _wait(pred: Any, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_real_alertmanager_opens_one_incident_and_resolves_it(tmp_path: Path) -> None:
    with served(tmp_path) as (base, c, tokens):
        _deliver_and_resolve(tmp_path, base, c, tokens[Role.OPERATOR])


def _deliver_and_resolve(tmp_path: Path, base: str, c: Controller, token: str) -> None:
    with _alertmanager(tmp_path, f"{base}/webhooks/alertmanager", token) as am:
        alert = {
            "labels": {"alertname": "DiskFull", "target": "db-0", "severity": "page"},
            "annotations": {"summary": "disk 97% full"},
            "startsAt": _iso(time.time() - 5),
        }

        def incidents() -> list[Any]:
            return on_loop(c, lambda: c.store.incidents(limit=10))

        for _ in range(5):  # re-sent, as Prometheus does on every evaluation
            assert httpx.post(f"{am}/api/v2/alerts", json=[alert]).status_code == 200
        _wait(lambda: len(incidents()) == 1, "an incident from the alert")
        time.sleep(1.5)  # at least one more group interval: resends must not open more
        [inc] = incidents()
        assert (inc.target, inc.kind.value, inc.status) == ("db-0", "alert", IncidentStatus.OPEN)

        resolved = {**alert, "endsAt": _iso(time.time() - 1)}
        assert httpx.post(f"{am}/api/v2/alerts", json=[resolved]).status_code == 200
        _wait(lambda: incidents()[0].status is IncidentStatus.RESOLVED, "the incident resolved")
        assert len(incidents()) == 1
        _assert_no_refusals(c)


def _assert_no_refusals(c: Controller) -> None:
    audit = on_loop(c, lambda: c.store.audit_log(limit=50))
    assert not [e for e in audit if e.result == "forbidden"]
