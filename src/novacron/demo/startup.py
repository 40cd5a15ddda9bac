"""How fast a demo service starts and stops: the floor under every restart's MTTR.

:func:`measure_startup` execs ``python -m novacron.demo.service`` again and again and
times exec → first ``200`` on ``/health`` (polled over raw sockets every millisecond)
and SIGTERM → exit. It returns a JSON-serialisable dict of percentiles in milliseconds.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import statistics
import subprocess
import sys
import time
from typing import Any

from novacron.demo.fleet import SERVICE_MODULE, free_port_block

__all__ = ["measure_startup"]


def _healthy(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return sock.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)

    def pick(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2)

    return {"p50": round(statistics.median(ordered) * 1000, 2), "p95": pick(0.95), "max": pick(1.0)}


def _one_run(port: int, timeout_s: float) -> tuple[float, float]:
    cmd = [sys.executable, "-m", SERVICE_MODULE, "--name", "startup", "--port", str(port)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while not _healthy(port):
            if proc.poll() is not None or time.perf_counter() - t0 > timeout_s:
                raise RuntimeError(f"demo service did not become healthy (exit {proc.poll()})")
            time.sleep(0.001)
        started = time.perf_counter() - t0
        t1 = time.perf_counter()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=timeout_s)
        return started, time.perf_counter() - t1
    finally:
        if proc.poll() is None:
            proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=timeout_s)


def measure_startup(runs: int = 30, *, timeout_s: float = 10.0) -> dict[str, Any]:
    """Start and stop a demo service ``runs`` times; percentiles of both phases in ms."""
    if runs < 1:
        raise ValueError(f"runs: must be >= 1, got {runs}")
    port = free_port_block(1)
    starts: list[float] = []
    stops: list[float] = []
    for _ in range(runs):
        started, stopped = _one_run(port, timeout_s)
        starts.append(started)
        stops.append(stopped)
    return {
        "runs": runs,
        "exec_to_first_200_ms": _percentiles(starts),
        "sigterm_to_exit_ms": _percentiles(stops),
    }
