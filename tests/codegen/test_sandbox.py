"""The sandbox refuses the network, stops runaway commands at their timeout, limits memory."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import psutil

from novacron.codegen.sandbox import SandboxLimits, network_isolation, run_sandboxed

PY = f'"{sys.executable}" -c'


def _run(code: str, tmp_path: Path, *, timeout_s: float, memory_bytes: int = 2 * 1024**3) -> tuple[int, str, bool]:
    probe = tmp_path / "probe"
    probe.mkdir(exist_ok=True)
    limits = SandboxLimits(timeout_s=timeout_s, memory_bytes=memory_bytes)
    r = run_sandboxed(f"{PY} '{code}'", cwd=tmp_path, env=dict(os.environ), limits=limits, probe_dir=probe)
    return r.returncode, r.output, r.timed_out


def test_outside_addresses_are_unreachable(tmp_path: Path) -> None:
    # 192.0.2.1 is TEST-NET-1 (documentation only): in the sandbox nothing routes anywhere.
    code = 'import socket; s = socket.socket(); s.settimeout(2); s.connect(("192.0.2.1", 9))'
    rc, out, _ = _run(code, tmp_path, timeout_s=20)
    assert rc != 0
    assert "unreachable" in out.lower() or "refused by the NovaCron fix sandbox" in out
    assert network_isolation() in {"netns", "socket-guard"}


def test_loopback_still_works_inside(tmp_path: Path) -> None:
    code = (
        'import socket; srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(); '
        'c = socket.create_connection(srv.getsockname(), timeout=2); print("connected")'
    )
    rc, out, _ = _run(code, tmp_path, timeout_s=20)
    assert rc == 0, out
    assert "connected" in out


def test_a_runaway_command_is_stopped_at_its_timeout(tmp_path: Path) -> None:
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    rc, _, timed_out = _run("while True: pass", tmp_path, timeout_s=1.0)
    assert timed_out
    assert rc != 0
    left = [p for p in psutil.Process().children(recursive=True) if p.pid not in before and p.is_running()]
    assert not [p for p in left if p.status() != psutil.STATUS_ZOMBIE]


def test_memory_is_limited(tmp_path: Path) -> None:
    rc, out, _ = _run("x = bytearray(800 * 1024 * 1024)", tmp_path, timeout_s=20, memory_bytes=300 * 1024 * 1024)
    assert rc != 0
    assert "MemoryError" in out
