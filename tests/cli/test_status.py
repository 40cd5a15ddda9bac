"""``novacron status`` and the read commands: honest about a dead controller, never creating a store."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import psutil

from novacron.api.status_view import fleet_status
from novacron.clock import FakeClock
from novacron.incidents.lifecycle import IncidentManager
from novacron.model import Fault, FaultId, FaultKind, TargetId
from novacron.store import Store, TargetStatusRow
from novacron.store.presence import STALE_AFTER_S, ControllerRecord, announce, beat
from novacron.telemetry import Metrics

from .runner import cli, cli_json, kill_fleet, service, spawn, wait_for, write_spec


def test_status_after_the_controller_is_sigkilled_is_not_healthy(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, service("api"))
    run = spawn(spec)
    try:
        where = ["-c", str(spec)]
        target = wait_for(
            lambda: (t := cli_json("status", *where)["targets"]) and t[0]["state"] == "healthy" and t[0], "healthy"
        )
        run.proc.send_signal(signal.SIGKILL)
        run.proc.wait(10)
        # The controller is gone; its target still runs, as last recorded.
        status = cli_json("status", *where, expect=3)
        assert status["controller"]["state"] == "down"
        assert status["controller"]["last_write_s_ago"] is not None
        [api] = status["targets"]
        assert api["stale"] is True
        assert api["pid"] == target["pid"]
        # Then the target dies too, and nobody restarts it: the status says so.
        os.killpg(target["pid"], signal.SIGKILL)
        wait_for(
            lambda: not psutil.pid_exists(target["pid"]) or psutil.Process(target["pid"]).status() == "zombie", "exit"
        )
        text = cli("status", *where)
        assert text.returncode == 3
        assert "controller: down" in text.stdout
        assert f"pid {run.proc.pid} is gone" in text.stdout
        [api] = cli_json("status", *where, expect=3)["targets"]
        assert api["state"] == "stopped"
        assert api["pid"] is None
        unreachable = cli("restart", "api", *where)
        assert unreachable.returncode == 3
        assert "not reachable" in unreachable.stderr
    finally:
        kill_fleet(tmp_path)


def test_a_controller_that_stops_writing_is_stale(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'n.db'}")
    t0 = psutil.Process().create_time() + 1  # this process plays the controller: its pid is alive
    me = ControllerRecord(os.getpid(), socket.gethostname(), t0, "0.1.0", "fleet.yaml", "http://127.0.0.1:1")
    announce(store, me, now=t0)
    store.set_target_status(TargetStatusRow("api", "healthy", 1, 1, t0, "", state="healthy"))
    assert fleet_status(store, now=t0 + 1).controller.state == "running"
    stale = fleet_status(store, now=t0 + STALE_AFTER_S + 1)
    assert stale.controller.state == "stale"
    assert stale.targets[0].stale is True
    now = t0 + STALE_AFTER_S + 2
    beat(store, now=now)
    assert fleet_status(store, now=now).controller.state == "running"
    store.close()


def test_read_commands_never_create_a_store(tmp_path: Path) -> None:
    for args in (["status"], ["status", "--json"], ["incidents", "list"], ["incidents", "show", "inc-1"]):
        res = cli(*args, cwd=tmp_path)
        assert res.returncode == 3, (args, res.stderr)
        assert "no store at .novacron/novacron.db" in res.stderr
    assert cli("restart", "api", cwd=tmp_path).returncode == 3
    assert list(tmp_path.iterdir()) == [], "nothing was created"


def test_incidents_list_keeps_full_ids_in_a_pipe_and_speaks_json(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'n.db'}"
    store = Store.open(url)
    clock = FakeClock(start=1_800_000_000.0)
    manager = IncidentManager(store, clock, Metrics())
    inc, _ = manager.on_fault(
        Fault(FaultId("f-1"), TargetId("a-service-with-a-long-name"), FaultKind.CRASH, clock.now(), clock.now() - 0.1)
    )
    store.close()
    listed = cli("incidents", "list", "--store", url)
    assert listed.returncode == 0, listed.stderr
    assert inc.id in listed.stdout
    assert "a-service-with-a-long-name" in listed.stdout
    [row] = cli_json("incidents", "list", "--store", url)
    assert {"id", "target", "kind", "status", "priority", "mttd_ms", "mttr_ms"} <= row.keys()
    assert row["id"] == inc.id
    shown = cli_json("incidents", "show", inc.id, "--store", url)
    assert shown["incident"]["id"] == inc.id
    assert shown["timeline"][0]["kind"] == "detected"
    empty = cli_json("status", "--store", url, expect=3)
    assert empty == {
        "controller": {"state": "never_started"} | empty["controller"],
        "targets": [],
        "nodes": [],
        "learning": None,
    }


def test_version_and_shell_completion() -> None:
    res = cli("--version")
    assert res.returncode == 0
    assert res.stdout.strip().startswith("novacron 0.")
    script = shutil.which("novacron") or str(Path(sys.executable).with_name("novacron"))
    env = {**os.environ, "_NOVACRON_COMPLETE": "complete_bash", "COMP_WORDS": "novacron unquar", "COMP_CWORD": "1"}
    done = subprocess.run([script], capture_output=True, text=True, env=env, timeout=60, check=False)
    assert "unquarantine" in done.stdout
    assert "--install-completion" in cli("--help").stdout
