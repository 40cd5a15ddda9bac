"""``novacron bench probes``: many HTTP health checks at a high rate on one event loop.

A separate process answers ``/health`` on ``targets`` loopback ports; this process runs
the controller's :class:`~novacron.sensors.probes.Prober` against all of them and
measures probes per second, event-loop lag (a 10 ms ticker's lateness) and its own CPU.
"""

from __future__ import annotations

import asyncio
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


def _free_block(n: int) -> int:
    from novacron.demo.fleet import free_port_block

    return free_port_block(n)


async def _lag_sampler(samples: list[float], stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        start = loop.time()
        await asyncio.sleep(_TICK_S)
        samples.append(max(0.0, loop.time() - start - _TICK_S))


async def _measure(first_port: int, targets: int, interval_s: float, duration_s: float) -> dict[str, Any]:
    counts = {"ok": 0, "failed": 0}

    def emit(obs: Observation) -> None:
        counts["ok" if obs.healthy else "failed"] += 1

    prober = Prober(MonotonicClock(), emit)
    for i in range(targets):
        check = HttpCheck(url=f"http://127.0.0.1:{first_port + i}/health", interval_s=interval_s, timeout_s=1.0)
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


def run_probe_bench(*, targets: int, interval_ms: float, duration_s: float = 10.0) -> dict[str, Any]:
    """Run the benchmark and return its JSON-ready result."""
    if not 1 <= targets <= 5000:
        raise InputError("must be between 1 and 5000", where="--targets")
    if interval_ms < 50:
        raise InputError("must be at least 50 (the smallest probe interval)", where="--interval-ms")
    first = _free_block(targets)
    server = subprocess.Popen(
        [sys.executable, "-m", "novacron.benchmarks._probe_server", str(first), str(targets)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        if server.stdout.readline().strip() != "ready":
            raise InputError("the probe target server did not start", where="bench probes")
        return asyncio.run(_measure(first, targets, interval_ms / 1000, duration_s))
    finally:
        server.kill()
        server.wait()
