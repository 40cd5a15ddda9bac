"""Safety rails in the store: a flap quarantine outlives ``kill -9`` of the controller and a restart."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import psutil

from novacron.model import ActionStatus
from novacron.store import Store
from tests.cli.runner import cli_json, kill_fleet, spawn, steady_service, stop, wait_for, write_spec

QUARANTINE_S = 30.0  # long enough for a slow, busy machine to restart the controller inside it (a few seconds)


def _web(spec: Path, expect: int = 0) -> dict[str, Any]:
    [web] = cli_json("status", "-c", str(spec), expect=expect)["targets"]
    return dict(web)


def _healthy_pid(spec: Path, old: int | None = None, timeout: float = 60.0) -> int:
    web = wait_for(
        lambda: (w := _web(spec))["state"] == "healthy" and w["pid"] not in (None, old) and w, "healthy", timeout
    )
    return int(web["pid"])


def _kill_target(pid: int) -> None:
    os.killpg(pid, signal.SIGKILL)
    wait_for(lambda: not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie", "the target's exit")


def _actions(tmp_path: Path) -> int:
    """Actions applied (a refusal by the quarantine rail is recorded as blocked, not applied)."""
    store = Store.open(f"sqlite:///{tmp_path / 'n.db'}")
    try:
        return sum(a.status is not ActionStatus.BLOCKED for a in store.actions(limit=1000))
    finally:
        store.close()


def test_quarantine_is_still_in_force_after_kill_9_and_a_restart(tmp_path: Path) -> None:
    flap = {"threshold": 2, "window_s": 120, "quarantine_s": QUARANTINE_S}
    spec = write_spec(
        tmp_path, steady_service("web"), flap=flap, verify_timeout_s=5, backoff={"base_s": 0.1, "cap_s": 1}
    )
    run = spawn(spec)
    try:
        pid = _healthy_pid(spec)
        _kill_target(pid)  # first incident: healed
        pid = _healthy_pid(spec, old=pid)
        _kill_target(pid)  # second within the window: quarantined, not healed
        web = wait_for(lambda: (w := _web(spec))["state"] == "quarantined" and w, "quarantine")
        until = float(web["quarantined_until"])
        assert until > time.time()
        run.proc.send_signal(signal.SIGKILL)
        run.proc.wait(10)
        actions = _actions(tmp_path)
        run = spawn(spec)
        time.sleep(2.0)  # long enough for a restarted controller to have restarted the target
        web = _web(spec)
        assert web["state"] == "quarantined"
        assert web["quarantined_until"] == until
        assert web["pid"] is None  # not started at boot, not healed
        assert _actions(tmp_path) == actions
        # When the quarantine ends the target is re-checked and, still down, healed.
        _healthy_pid(spec, timeout=QUARANTINE_S + 30)
        assert time.time() >= until - 0.5
    finally:
        stop(run)
        kill_fleet(tmp_path)
