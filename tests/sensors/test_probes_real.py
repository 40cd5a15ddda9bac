"""Probes and heartbeats against real servers and real sockets on loopback."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from novacron.clock import MonotonicClock
from novacron.demo.fleet import free_port_block
from novacron.model import Observation, TargetId
from novacron.sensors.heartbeat import HeartbeatMonitor
from novacron.sensors.httpprobe import HttpProbeClient
from novacron.sensors.probes import Prober, make_probe
from novacron.settings import ExecCheck, HeartbeatCheck, HttpCheck, TcpCheck


@pytest.fixture
def server() -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """A real HTTP server (the probe benchmark's) on one free port."""
    port = free_port_block(1)
    proc = subprocess.Popen(
        [sys.executable, "-m", "novacron.benchmarks._probe_server", str(port), "1"], stdout=subprocess.PIPE
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == b"ready"
    yield port, proc
    os.kill(proc.pid, signal.SIGCONT)
    proc.kill()
    proc.wait()


async def test_http_probe_reuses_one_connection(server: tuple[int, subprocess.Popen[bytes]]) -> None:
    port, _ = server
    client = HttpProbeClient(f"http://127.0.0.1:{port}/health")
    assert [await client.get(1.0) for _ in range(5)] == [200] * 5
    conn = client._conn
    assert await client.get(1.0) == 200
    assert client._conn is conn
    client.close()


async def test_http_probe_times_out_on_a_stopped_server(server: tuple[int, subprocess.Popen[bytes]]) -> None:
    port, proc = server
    client = HttpProbeClient(f"http://127.0.0.1:{port}/health")
    assert await client.get(1.0) == 200
    os.kill(proc.pid, signal.SIGSTOP)
    with pytest.raises(TimeoutError):
        await client.get(0.2)
    os.kill(proc.pid, signal.SIGCONT)
    assert await client.get(1.0) == 200, "a fresh connection after a timeout"


async def test_a_second_get_beside_a_waiting_one_gets_its_own_answer(
    server: tuple[int, subprocess.Popen[bytes]],
) -> None:
    """A confirmation sent while the suspected GET still waits: each is answered, none stolen."""
    port, proc = server
    client = HttpProbeClient(f"http://127.0.0.1:{port}/health")
    assert await client.get(1.0) == 200
    kept = client._conn
    os.kill(proc.pid, signal.SIGSTOP)
    first = asyncio.ensure_future(client.get(5.0))
    await asyncio.sleep(0.05)
    second = asyncio.ensure_future(client.get(5.0))
    await asyncio.sleep(0.05)
    os.kill(proc.pid, signal.SIGCONT)
    assert list(await asyncio.gather(first, second)) == [200, 200]
    assert client._conn is kept, "the kept-alive connection stays with the first GET"
    assert await client.get(1.0) == 200
    client.close()


async def test_http_probe_reports_refused_connections() -> None:
    client = HttpProbeClient(f"http://127.0.0.1:{free_port_block(1)}/health")
    with pytest.raises(OSError, match=r"refused|Connect"):
        await client.get(0.5)


def test_http_probe_rejects_non_http_urls() -> None:
    with pytest.raises(ValueError, match="http"):
        HttpProbeClient("ftp://example/health")


async def test_prober_emits_observations_for_each_check_kind(server: tuple[int, subprocess.Popen[bytes]]) -> None:
    port, _ = server
    seen: list[Observation] = []
    prober = Prober(MonotonicClock(), seen.append)
    checks: dict[str, HttpCheck | TcpCheck | ExecCheck] = {
        "http": HttpCheck(url=f"http://127.0.0.1:{port}/health", interval_s=0.05, timeout_s=0.5),
        "tcp": TcpCheck(port=port, interval_s=0.05, timeout_s=0.5),
        "exec": ExecCheck(command=[sys.executable, "-c", "raise SystemExit(1)"], interval_s=0.05, timeout_s=2),
    }
    for name, check in checks.items():
        prober.add(TargetId("t"), 0, name, make_probe(check, str), interval=check.interval_s, timeout=check.timeout_s)
    await asyncio.sleep(0.6)
    await prober.close()
    by_source = {o.source: o for o in seen}
    assert by_source["http"].healthy is True
    assert by_source["tcp"].healthy is True
    assert by_source["exec"].healthy is False
    assert by_source["exec"].detail == "exit 1"


async def test_heartbeats_over_udp_and_phi_suspicion() -> None:
    seen: list[Observation] = []
    monitor = HeartbeatMonitor(MonotonicClock(), seen.append, check_interval_s=0.01)
    monitor.register(TargetId("worker"), 0, HeartbeatCheck(expected_interval_s=0.05, min_std_s=0.01))
    port = await monitor.start()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for _ in range(20):
            sock.sendto(b"worker", ("127.0.0.1", port))
            await asyncio.sleep(0.05)
        assert [o.healthy for o in seen] == [True], "the first beat proves the source; regular beats add nothing"
        assert monitor.phi("worker") < 8
        await asyncio.sleep(0.4)  # silence: phi climbs past the threshold
        assert [o.healthy for o in seen] == [True, False]
        assert "phi" in seen[1].detail
        sock.sendto(b"worker#0", ("127.0.0.1", port))
        await asyncio.sleep(0.05)
    await monitor.close()
    assert [o.healthy for o in seen] == [True, False, True]
    assert not monitor.beat("stranger")
