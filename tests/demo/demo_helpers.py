"""Helpers for the demo tests: start real services, poll for conditions."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

import httpx

from novacron.demo.fleet import free_port_block


@dataclass
class Running:
    """One started service."""

    proc: subprocess.Popen[bytes]
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str, timeout: float = 5.0) -> httpx.Response:
        return httpx.get(self.url + path, timeout=timeout)


class Services:
    """Starts ``python -m novacron.demo.service`` children; :meth:`close` kills them all."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def spawn(self, *args: str, port: int | None = None) -> tuple[subprocess.Popen[bytes], int]:
        port = port or free_port_block(1)
        cmd = [sys.executable, "-m", "novacron.demo.service", "--port", str(port), *args]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.procs.append(proc)
        return proc, port

    def start(self, name: str, *args: str) -> Running:
        proc, port = self.spawn("--name", name, *args)
        running = Running(proc, port)
        wait_until(lambda: _ok(running), what=f"{name} healthy")
        return running

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
            if proc.stderr is not None:
                proc.stderr.close()


def _ok(svc: Running) -> bool:
    if svc.proc.poll() is not None:
        raise AssertionError(f"service exited with {svc.proc.returncode}")
    try:
        return svc.get("/health", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def wait_until(cond: object, *, what: str, timeout: float = 10.0, step: float = 0.02) -> None:
    """Poll ``cond()`` until true; fail the test after ``timeout`` seconds."""
    assert callable(cond)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(step)
    raise AssertionError(f"timed out waiting for: {what}")
