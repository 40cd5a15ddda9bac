"""``novacron bench probes``: many HTTP health checks at a high rate on one event loop.

A separate process answers ``/health`` on ``targets`` loopback ports; this process runs
the controller's :class:`~novacron.sensors.probes.Prober` against all of them and
measures probes per second, event-loop lag (a 10 ms ticker's lateness) and its own CPU.
"""

from __future__ import annotations

import asyncio
import resource
import subprocess
import sys
import time
from typing import Any

import psutil

from novacron.clock import MonotonicClock
from novacron.errors import InputError
from novacron.model import Observation, TargetId
from novacron.sensors.probes import Prober, make_probe
from novacron.settings import HttpCheck

from ._stats import percentiles

__all__ = ["run_probe_bench"]

_TICK_S = 0.01


async def _lag_sampler(samples: list[float], stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        start = loop.time()
        await asyncio.sleep(_TICK_S)
        samples.append(max(0.0, loop.time() - start - _TICK_S))


async def _measure(ports: list[int], interval_s: float, duration_s: float) -> dict[str, Any]:
    counts = {"ok": 0, "failed": 0}

    def emit(obs: Observation) -> None:
        counts["ok" if obs.healthy else "failed"] += 1

    prober = Prober(MonotonicClock(), emit)
    targets = len(ports)
    for i, port in enumerate(ports):
        check = HttpCheck(url=f"http://127.0.0.1:{port}/health", interval_s=interval_s, timeout_s=1.0)
        prober.add(TargetId(f"t{i}"), 0, "http:0", make_probe(check, str), interval=interval_s, timeout=1.0)
    await asyncio.sleep(2.0)  # warm-up: connections opened, schedules spread
    lag: list[float] = []
    stop = asyncio.Event()
    sampler = asyncio.get_running_loop().create_task(_lag_sampler(lag, stop))
    me = psutil.Process()
    cpu0, t0, n0 = me.cpu_times(), time.monotonic(), counts["ok"] + counts["failed"]
    failed0 = counts["failed"]
    await asyncio.sleep(duration_s)
    cpu1, t1, n1 = me.cpu_times(), time.monotonic(), counts["ok"] + counts["failed"]
    stop.set()
    await sampler
    await prober.close()
    busy = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    return {
        "targets": targets,
        "interval_ms": round(interval_s * 1000, 1),
        "probes_per_s": round((n1 - n0) / (t1 - t0), 1),
        "expected_probes_per_s": round(targets / interval_s, 1),
        "failed_probes": counts["failed"] - failed0,
        "loop_lag_ms": percentiles(lag, (50, 99), scale=1000),
        "cpu_percent": round(100 * busy / (t1 - t0), 1),
    }


MAX_TARGETS = 5000
MIN_INTERVAL_MS = 50.0


def run_probe_bench(*, targets: int, interval_ms: float, duration_s: float = 10.0) -> dict[str, Any]:
    """Run the benchmark and return its JSON-ready result."""
    if not 1 <= targets <= MAX_TARGETS:
        raise InputError(f"must be between 1 and {MAX_TARGETS}", where="--targets")
    if interval_ms < MIN_INTERVAL_MS:
        raise InputError(f"must be at least {MIN_INTERVAL_MS:g} (the smallest probe interval)", where="--interval-ms")
    _ensure_fds(targets)
    server = subprocess.Popen(
        [sys.executable, "-m", "novacron.benchmarks._probe_server", "0", str(targets)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        word, _, listed = server.stdout.readline().strip().partition(" ")
        if word != "ready":
            raise InputError("the probe target server did not start", where="bench probes")
        ports = [int(p) for p in listed.split(",")]
        return asyncio.run(_measure(ports, interval_ms / 1000, duration_s))
    finally:
        server.kill()
        server.wait()


def _ensure_fds(targets: int) -> None:
    """One connection per target here: raise the descriptor limit, or say why it cannot be."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = targets + 256
    unlimited = hard == resource.RLIM_INFINITY
    if not unlimited and hard < need:
        raise InputError(f"{targets} targets need {need} open files; this process may have {hard}", where="--targets")
    if soft != resource.RLIM_INFINITY and soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
