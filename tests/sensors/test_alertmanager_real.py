"""A REAL Alertmanager delivers its v4 webhook to a loopback receiver; our intake parses it.

Needs the Debian package ``prometheus-alertmanager`` (binary ``prometheus-alertmanager``);
without it this test fails with the install hint instead of skipping.
"""

from __future__ import annotations

import datetime as dt
import queue
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from novacron.model import FaultKind
from novacron.sensors.alertmanager import AlertDeduplicator, AlertEvent, parse_webhook

from ..binaries import alertmanager as running_alertmanager

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def inbox() -> Iterator[tuple[int, queue.Queue[bytes]]]:
    """A loopback webhook receiver; every body it gets lands in the queue."""
    bodies: queue.Queue[bytes] = queue.Queue()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            bodies.put(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield int(server.server_address[1]), bodies
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def alertmanager(inbox: tuple[int, queue.Queue[bytes]], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    webhook = f"      - {{url: 'http://127.0.0.1:{inbox[0]}/alerts', send_resolved: true}}\n"
    with running_alertmanager(tmp_path_factory.mktemp("alertmanager"), webhook, group_wait="1s") as url:
        yield url


def _iso(t: float) -> str:
    return dt.datetime.fromtimestamp(t, tz=dt.UTC).isoformat()


def _post(url: str, alert: dict[str, Any]) -> None:
    r = httpx.post(f"{url}/api/v2/alerts", json=[alert])
    assert r.status_code == 200, r.text


def _next_events(bodies: queue.Queue[bytes], firing: bool, timeout: float = 30.0) -> list[AlertEvent]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            body = bodies.get(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            break
        events = parse_webhook(body)
        if any(e.firing == firing for e in events):
            return events
    pytest.fail(f"no {'firing' if firing else 'resolved'} webhook from alertmanager within {timeout}s")


def test_real_alertmanager_webhook_opens_one_episode_and_resolves_it(
    alertmanager: str, inbox: tuple[int, queue.Queue[bytes]]
) -> None:
    _, bodies = inbox
    starts = time.time() - 5
    alert = {
        "labels": {"alertname": "DiskFull", "target": "db-0", "severity": "page"},
        "annotations": {"summary": "disk 97% full"},
        "startsAt": _iso(starts),
        "generatorURL": "http://prometheus.test/graph",
    }
    for _ in range(5):  # the same alert pushed repeatedly, as Prometheus does every evaluation
        _post(alertmanager, alert)
    dedup = AlertDeduplicator()
    (event,) = _next_events(bodies, firing=True)
    assert event.target == "db-0"
    assert event.name == "DiskFull"
    assert event.annotations["summary"] == "disk 97% full"
    assert abs(event.starts_at - starts) < 1e-3
    opened = dedup.observe(event, now=time.time())
    assert opened is not None
    assert opened.kind == "opened"
    assert opened.fault is not None
    assert opened.fault.kind is FaultKind.ALERT
    again = dedup.observe(event, now=time.time())
    assert again is not None
    assert again.kind == "repeated"

    _post(alertmanager, {**alert, "endsAt": _iso(time.time() - 1)})
    resolved = [e for e in _next_events(bodies, firing=False) if not e.firing]
    assert [e.fingerprint for e in resolved] == [event.fingerprint]
    closing = dedup.observe(resolved[0], now=time.time())
    assert closing is not None
    assert closing.kind == "resolved"
    assert closing.fault_id == opened.fault.id
