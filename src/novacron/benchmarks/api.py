"""``novacron bench api``: Alertmanager intake and incident listing under 200 concurrent connections.

The API runs as ``novacron run --api-port`` in a subprocess (a real controller, empty
fleet, SQLite store, uvicorn), exactly as deployed. The load generator keeps
``connections`` HTTP/1.1 keep-alive connections on loopback and sends pre-encoded
requests over raw asyncio streams: a full HTTP client library would cost more CPU than
the server it measures on a 2-core machine. Every request is counted, and any non-200
answer is reported as an error rather than dropped.

The intake workload is what Alertmanager produces: a set of active alerts re-sent over
and over (one alert per webhook, the worst case for per-request overhead); the first
delivery of each opens an incident, every later one is a deduplicated repeat.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from novacron.benchmarks._stats import percentiles
from novacron.store import Store
from novacron.store.tokens import Role, TokenStore

__all__ = ["run_api_bench"]

_HOST = "127.0.0.1"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind((_HOST, 0))
        return int(s.getsockname()[1])


def _alert(i: int) -> dict[str, Any]:
    return {
        "status": "firing",
        "labels": {"alertname": "BenchAlert", "target": f"svc-{i % 50}", "instance": f"10.0.0.{i % 250}:9100"},
        "annotations": {"summary": f"bench alert {i}"},
        "startsAt": "2026-11-21T10:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus.local/graph",
        "fingerprint": f"bench{i:08x}",
    }


def _webhook(i: int, per_webhook: int = 1) -> bytes:
    body = {
        "version": "4",
        "groupKey": '{}:{alertname="BenchAlert"}',
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "novacron",
        "groupLabels": {"alertname": "BenchAlert"},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.local",
        "alerts": [_alert(i * per_webhook + k) for k in range(per_webhook)],
    }
    return json.dumps(body, separators=(",", ":")).encode()


def _request(method: str, path: str, token: str, body: bytes = b"") -> bytes:
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: {_HOST}\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> bytes:
    """Send one request on a keep-alive connection; return the response's status code."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)
    return head[9:12]


async def _worker(
    port: int, requests: Sequence[bytes], take: itertools.count[int], total: int, lat: list[float], errors: list[str]
) -> None:
    """Closed loop: the next request goes as soon as the previous answer is in."""
    reader, writer = await asyncio.open_connection(_HOST, port)
    try:
        while (i := next(take)) < total:
            start = time.perf_counter()
            status = await _exchange(reader, writer, requests[i % len(requests)])
            lat.append(time.perf_counter() - start)
            if status != b"200":
                errors.append(status.decode())
    finally:
        writer.close()


async def _paced_worker(
    port: int, requests: Sequence[bytes], slots: Sequence[float], lat: list[float], errors: list[str]
) -> None:
    """Open loop: requests are due at fixed times; latency counts from the due time.

    Counting from the due time (not the send time) charges queueing to the server, so
    a slow server cannot hide behind a client that politely waits (coordinated omission).
    """
    reader, writer = await asyncio.open_connection(_HOST, port)
    try:
        for n, due in enumerate(slots):
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            status = await _exchange(reader, writer, requests[n % len(requests)])
            lat.append(time.perf_counter() - due)
            if status != b"200":
                errors.append(status.decode())
    finally:
        writer.close()


async def _load(port: int, requests: Sequence[bytes], total: int, connections: int) -> dict[str, Any]:
    lat: list[float] = []
    errors: list[str] = []
    take = itertools.count()
    start = time.perf_counter()
    await asyncio.gather(*(_worker(port, requests, take, total, lat, errors) for _ in range(connections)))
    elapsed = time.perf_counter() - start
    pct = percentiles(lat, (50, 99), scale=1000.0)
    return {
        "requests_per_s": round(len(lat) / elapsed, 1),
        "p50_ms": pct["p50"],
        "p99_ms": pct["p99"],
        "requests": len(lat),
        "errors": len(errors),
        "seconds": round(elapsed, 2),
    }


async def _load_at_rate(
    port: int, requests: Sequence[bytes], rate: float, seconds: float, connections: int
) -> dict[str, Any]:
    lat: list[float] = []
    errors: list[str] = []
    total = int(rate * seconds)
    t0 = time.perf_counter() + 0.2
    slots = [[t0 + k / rate for k in range(c, total, connections)] for c in range(connections)]
    await asyncio.gather(*(_paced_worker(port, requests, s, lat, errors) for s in slots))
    elapsed = time.perf_counter() - t0
    pct = percentiles(lat, (50, 99), scale=1000.0)
    return {
        "offered_per_s": rate,
        "requests_per_s": round(len(lat) / elapsed, 1),
        "p50_ms": pct["p50"],
        "p99_ms": pct["p99"],
        "requests": len(lat),
        "errors": len(errors),
    }


def _start_server(workdir: Path, port: int) -> subprocess.Popen[bytes]:
    spec = (
        f"name: bench\ncontroller:\n  store_url: sqlite:///{workdir / 'bench.db'}\n"
        f"  workdir: {workdir}\n  api_port: {port}\ntargets: []\n"
    )
    (workdir / "fleet.yaml").write_text(spec)
    return subprocess.Popen(
        [sys.executable, "-m", "novacron.cli", "run", "-c", str(workdir / "fleet.yaml")],
        stdout=subprocess.DEVNULL,
        stderr=(workdir / "server.log").open("wb"),
    )


def _wait_ready(proc: subprocess.Popen[bytes], port: int, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the API server exited with {proc.returncode}")
        try:
            if httpx.get(f"http://{_HOST}:{port}/health", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError("the API server did not answer /health in time")


def _parser() -> str:
    """What uvicorn parses HTTP with here (httptools when installed, else h11)."""
    try:
        import httptools  # noqa: F401
    except ImportError:
        return "h11"
    return "httptools"


def run_api_bench(
    *,
    intake_requests: int = 20_000,
    list_requests: int = 4_000,
    connections: int = 200,
    alerts: int = 500,
    rate: float = 2_000.0,
    rate_seconds: float = 5.0,
    batch: int = 20,
) -> dict[str, Any]:
    """Serve the API in a subprocess and measure intake and listing; returns the JSON result."""
    with tempfile.TemporaryDirectory(prefix="novacron-bench-api-") as tmp:
        workdir = Path(tmp)
        store = Store.open(f"sqlite:///{workdir / 'bench.db'}")
        _, token = TokenStore(store).create("bench", Role.OPERATOR, now=time.time())
        store.close()
        port = _free_port()
        proc = _start_server(workdir, port)
        try:
            _wait_ready(proc, port)
            intake = [_request("POST", "/webhooks/alertmanager", token, _webhook(i)) for i in range(alerts)]
            listing = [_request("GET", "/incidents?limit=50", token)]
            asyncio.run(_load(port, intake[:50], 200, 20))  # warm-up: first deliveries, imports, caches
            result_intake = asyncio.run(_load(port, intake, intake_requests, connections))
            paced = asyncio.run(_load_at_rate(port, intake, rate, rate_seconds, connections))
            batched = [_request("POST", "/webhooks/alertmanager", token, _webhook(i, batch)) for i in range(50)]
            result_batched = asyncio.run(_load(port, batched, max(200, intake_requests // batch), connections))
            result_batched["alerts_per_s"] = round(result_batched["requests_per_s"] * batch, 1)
            result_list = asyncio.run(_load(port, listing, list_requests, connections))
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
    result_intake["alerts_per_s"] = result_intake["requests_per_s"]
    return {
        "intake": result_intake,
        "intake_paced": paced,
        "intake_batched": result_batched,
        "list_incidents": result_list,
        "config": {
            "connections": connections,
            "alerts_per_webhook": 1,
            "batched_alerts_per_webhook": batch,
            "distinct_alerts": alerts,
            "http_parser": _parser(),
            "server": "novacron run (controller + uvicorn, one process), SQLite store",
            "cpus": os.cpu_count(),
        },
    }
