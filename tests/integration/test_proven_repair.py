"""A repair is proven: the process the action started must own the target's port.

A stranger holding the port answers the health check, but a restart is never "verified"
then: the failure names the holder's pid. ``validate`` and ``run`` say up front what is wrong.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from novacron.actuators.ownership import port_holder
from novacron.demo.fleet import free_port_block
from novacron.model import ActionStatus
from novacron.store import Store
from tests.cli.runner import cli, controller, wait_for

# Binds its port only after a pause, so a stranger can take the port first.
LATE_BINDER = """
import socket, sys, time
time.sleep(6.0)
s = socket.socket()
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen()
while True:
    time.sleep(1)
"""
SQUATTER = (
    "import socket, sys, time; s = socket.socket(); s.bind(('127.0.0.1', int(sys.argv[1]))); s.listen(); "
    "time.sleep(120)"
)


@pytest.fixture
def port() -> int:
    return free_port_block(1)


@pytest.fixture
def squatters() -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        proc.kill()
        proc.wait()


def _squat(port: int, procs: list[subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-c", SQUATTER, str(port)])
    procs.append(proc)
    return proc


def _spec(tmp_path: Path, port: int, command: list[str]) -> Path:
    target: dict[str, Any] = {
        "name": "web",
        "command": command,
        "port": port,
        "start_timeout_s": 10,
        "stop_timeout_s": 1,
        "checks": [{"type": "tcp", "port": port, "interval_s": 0.1, "timeout_s": 0.3, "failures": 2}],
    }
    spec = {
        "name": "proof",
        "policy": {"verify_timeout_s": 2, "backoff": {"base_s": 0.1, "cap_s": 1}, "flap": {"threshold": 50}},
        "controller": {"store_url": f"sqlite:///{tmp_path / 'n.db'}", "workdir": str(tmp_path / "work")},
        "targets": [target],
    }
    path = tmp_path / "fleet.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_a_port_clash_is_reported_with_the_holder_and_never_verified(
    tmp_path: Path, port: int, squatters: list[subprocess.Popen[bytes]]
) -> None:
    (tmp_path / "late.py").write_text(LATE_BINDER)
    spec = _spec(tmp_path, port, [sys.executable, str(tmp_path / "late.py"), str(port)])
    store = Store.open(f"sqlite:///{tmp_path / 'n.db'}")
    try:
        with controller(spec):
            squatter = _squat(port, squatters)  # takes the port while web still sleeps
            wait_for(lambda: (h := port_holder(port)) is not None and h.pid == squatter.pid, "the squatter", timeout=6)
            failed = wait_for(
                lambda: [a for a in store.actions() if a.status is ActionStatus.FAILED], "a failed restart", timeout=60
            )
            detail = failed[0].detail
            # Refused at spawn, or not proven after it: either way the holder is named.
            assert f"port {port}" in detail
            assert f"pid {squatter.pid}" in detail
            assert all(a.status is not ActionStatus.VERIFIED for a in store.actions())
            [incident] = store.incidents()
            kinds = [e.kind for e in store.timeline(incident.id)]
            assert "verified" not in kinds
            assert "verification_failed" not in kinds
            assert "action_failed" in kinds
    finally:
        store.close()


def test_validate_and_run_name_a_missing_binary_and_validate_a_held_port(
    tmp_path: Path, port: int, squatters: list[subprocess.Popen[bytes]]
) -> None:
    missing = _spec(tmp_path, port, ["/nonexistent/bin/web-server", "--port", str(port)])
    for command in ("validate", "run"):
        res = cli(command, "-c", str(missing), timeout=30)
        assert res.returncode == 2, res.stderr
        assert "targets[0].command[0]" in res.stderr
        assert "no such file" in res.stderr
    held = _spec(tmp_path, port, [sys.executable, "-m", "http.server", str(port)])
    squatter = _squat(port, squatters)
    note = wait_for(
        lambda: (
            (res := cli("validate", "-c", str(held))).returncode == 0 and f"pid {squatter.pid}" in res.stdout and res
        ),
        "the holder named",
    )
    assert "targets[0].port" in note.stdout


def test_a_target_without_checks_that_dies_a_moment_after_its_start_is_never_verified(tmp_path: Path) -> None:
    # Without checks, a replica proves itself by running min_uptime_s (0.3 s here): one that
    # dies after 0.2 s fails every step of the ladder instead of verifying each restart.
    steady = {"name": "steady", "command": ["sleep", "60"], "min_uptime_s": 0.3}
    dies = {"name": "dies", "command": ["sh", "-c", "sleep 0.2; exit 1"], "min_uptime_s": 0.3, "stop_timeout_s": 1}
    spec = {
        "name": "uptime",
        "policy": {"verify_timeout_s": 2, "backoff": {"base_s": 0.1, "cap_s": 1}, "flap": {"threshold": 50}},
        "controller": {"store_url": f"sqlite:///{tmp_path / 'n.db'}", "workdir": str(tmp_path / "work")},
        "targets": [steady, dies],
    }
    path = tmp_path / "fleet.yaml"
    path.write_text(yaml.safe_dump(spec))
    store = Store.open(f"sqlite:///{tmp_path / 'n.db'}")
    try:
        with controller(path):
            escalated = wait_for(
                lambda: [i for i in store.incidents() if i.target == "dies" and i.status.value == "needs_human"],
                "the dying target escalated",
            )
            timeline = store.timeline(escalated[0].id)
            assert "verified" not in [e.kind for e in timeline]
            assert all(a.status is not ActionStatus.VERIFIED for a in store.actions() if a.action.target == "dies")
            assert [i for i in store.incidents() if i.target == "steady"] == [], "a steady one proves itself"
    finally:
        store.close()
