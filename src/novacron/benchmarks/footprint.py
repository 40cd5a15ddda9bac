"""``novacron bench footprint``: what ``novacron run`` itself costs on a host.

For each fleet size it starts ``novacron run`` exactly as a user would (a fresh Python
process, the CLI, a SQLite store) over ``sleep`` targets whose TCP check points at a
listener in this process. The first connection that listener accepts *is* the
controller's first probe, so ``start_to_first_probe_ms`` runs from spawning the command
to that moment, start-up imports included (the store already exists, as on every start
but the first, which also migrates it). Once every target has been probed, the
controller idles (no faults, probes at their 1 s interval) and its resident memory and
CPU are read with psutil. Children (the targets) are not counted.
"""

from __future__ import annotations

import os
import platform
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import yaml

from novacron.errors import InputError, TemporaryError
from novacron.store import Store

__all__ = ["run_footprint_bench"]

_MB = 1024 * 1024


class _ProbeListener:
    """A TCP listener that notes when the first connection arrives and which ports it came from."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0), backlog=1024)
        self.sock.setblocking(False)
        self.port = int(self.sock.getsockname()[1])
        self.first: float | None = None
        self.first_cpu_s: float | None = None  # the controller's CPU time when its first probe arrived
        self.pid: int | None = None
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        sel = selectors.DefaultSelector()
        sel.register(self.sock, selectors.EVENT_READ)
        while not self._stop.is_set():
            for _key, _ in sel.select(timeout=0.05):
                try:
                    conn, _addr = self.sock.accept()
                except BlockingIOError:
                    continue
                if self.first is None:
                    self.first = time.perf_counter()
                    self.first_cpu_s = _cpu_s(self.pid)
                self.accepted += 1
                conn.close()
        sel.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


def _spec(workdir: Path, targets: int, port: int) -> Path:
    spec = {
        "name": f"footprint-{targets}",
        "controller": {"store_url": f"sqlite:///{workdir / 'n.db'}", "workdir": str(workdir)},
        "targets": [
            {
                "name": f"t{i}",
                "command": ["sleep", "3600"],
                "start_timeout_s": 60,
                "checks": [{"type": "tcp", "host": "127.0.0.1", "port": port, "interval_s": 1.0, "timeout_s": 1.0}],
            }
            for i in range(targets)
        ],
    }
    path = workdir / "fleet.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _measure(targets: int, idle_s: float) -> dict[str, Any]:
    listener = _ProbeListener()
    with tempfile.TemporaryDirectory(prefix="novacron-footprint-") as tmp:
        spec = _spec(Path(tmp), targets, listener.port)
        # The store exists, as on every start but the very first (which also runs the migrations).
        Store.open(f"sqlite:///{Path(tmp) / 'n.db'}").close()
        argv = [sys.executable, "-m", "novacron.cli", "run", "-c", str(spec), "--log-format", "json"]
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp)
        listener.pid = proc.pid
        try:
            return _observe(proc, listener, targets, start, idle_s)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            listener.close()


def _observe(
    proc: subprocess.Popen[bytes], listener: _ProbeListener, targets: int, start: float, idle_s: float
) -> dict[str, Any]:
    deadline = start + 60 + targets * 0.5
    while listener.accepted < 2 * targets:  # every target probed at least twice: start-up is over
        if proc.poll() is not None:
            raise TemporaryError(f"novacron run exited with {proc.returncode} before probing every target")
        if time.perf_counter() > deadline:
            raise TemporaryError(f"only {listener.accepted} probes for {targets} targets within the deadline")
        time.sleep(0.01)
    assert listener.first is not None
    me = psutil.Process(proc.pid)
    time.sleep(1.0)  # let the burst of first probes and status writes settle
    cpu0, t0 = me.cpu_times(), time.perf_counter()
    time.sleep(idle_s)
    cpu1, t1 = me.cpu_times(), time.perf_counter()
    busy = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    return {
        "rss_mb": round(me.memory_info().rss / _MB, 1),
        "start_to_first_probe_ms": round((listener.first - start) * 1000, 1),
        "cpu_percent_idle": round(100 * busy / (t1 - t0), 2),
        # CPU the controller spent before its first probe: what the start costs on a quiet machine,
        # where the wall-clock figure above also counts waiting for a core on a busy one.
        "cpu_ms_to_first_probe": None if listener.first_cpu_s is None else round(listener.first_cpu_s * 1000, 1),
    }


def _cpu_s(pid: int | None) -> float | None:
    if pid is None:
        return None
    try:
        t = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return None
    return float(t.user + t.system)


def run_footprint_bench(*, targets: list[int], idle_s: float = 10.0) -> dict[str, Any]:
    """Measure ``novacron run`` for each fleet size in ``targets``; one JSON-ready dict."""
    if not targets or any(n < 1 or n > 2000 for n in targets):
        raise InputError("each fleet size must be between 1 and 2000", where="--targets")
    if idle_s <= 0:
        raise InputError("must be positive", where="--idle-s")
    by_targets = {str(n): _measure(n, idle_s) for n in targets}
    return {
        "by_targets": by_targets,
        "idle_s": idle_s,
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }
