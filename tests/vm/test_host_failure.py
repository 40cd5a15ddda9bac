"""A failed VM host is noticed by ``novacron run`` itself and its guests restart elsewhere, by priority.

Two ways a host fails: all its QEMU processes end at once (SIGKILLed here), or the
controller node vouching for it stops beating in the store. The guests then move
through the executor as cold ``vm_migrate`` actions, highest priority first, onto the
hosts with room; a guest nothing has room for fails naming why.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from novacron.actuators.qemu_guest import Guest, guest_target
from novacron.demo.fleet import free_port_block
from novacron.model import ActionStatus, Incident, IncidentStatus
from novacron.settings import TargetSpec
from novacron.store import Store, nodes
from tests.cli.runner import Running, cli_json, controller, wait_for

_BOOT_S = 240.0


def _spec(tmp_path: Path, guest: Guest, targets: list[Any], hosts: list[dict[str, Any]]) -> Path:
    path = tmp_path / "fleet.yaml"
    data = {
        "name": "vm-hosts",
        "policy": {"verify_timeout_s": _BOOT_S, "backoff": {"base_s": 0.1}},
        "controller": {
            "store_url": f"sqlite:///{tmp_path / 'n.db'}",
            "workdir": str(tmp_path / "work"),
            "ha": {"node_stale_s": 1.0, "lease_s": 2.0, "renew_s": 0.25},
        },
        "hosts": hosts,
        "targets": [t.model_dump(mode="json") for t in targets],
    }
    path.write_text(yaml.safe_dump(data))
    return path


def _patient(target: TargetSpec) -> TargetSpec:
    """The guest's checks made patient with a slow guest, still quick to see its port closed.

    Under TCG on a busy machine a guest can leave a health request (or its heartbeats)
    unanswered for seconds: that would be a hang fault, and a restart the test did not
    ask for, before the host's QEMUs are even killed. A closed port still fails the HTTP
    check at once, so a probe can still open a guest's incident before its QEMU's exit is
    handled — the race the failover's ownership of the guest settles.
    """
    http, beat = target.checks
    checks = [http.model_copy(update={"timeout_s": 10.0}), beat.model_copy(update={"acceptable_pause_s": 10.0})]
    return target.model_copy(update={"checks": checks})


def _all_healthy(spec: Path) -> dict[str, Any] | None:
    views = {t["name"]: t for t in cli_json("status", "-c", str(spec))["targets"]}
    return views if all(v["state"] == "healthy" and v["pid"] for v in views.values()) else None


def _migrations(db: Path) -> list[Any]:
    store = Store.open(f"sqlite:///{db}")
    try:
        done = (ActionStatus.VERIFIED, ActionStatus.FAILED)
        return [a for a in store.actions() if a.action.kind == "vm_migrate" and a.status in done]
    finally:
        store.close()


def _in_flight(db: Path) -> list[str]:
    store = Store.open(f"sqlite:///{db}")
    try:
        waiting = (ActionStatus.PLANNED, ActionStatus.APPLYING, ActionStatus.APPLIED)
        return [f"{a.action.kind} {a.action.target}: {a.status}" for a in store.actions() if a.status in waiting]
    finally:
        store.close()


def _incidents(db: Path) -> list[Incident]:
    store = Store.open(f"sqlite:///{db}")
    try:
        return store.incidents()
    finally:
        store.close()


def _logged(run: Running, event: str) -> list[dict[str, Any]]:
    return [line for line in run.lines() if line.get("event") == event]


@pytest.mark.timeout(400)
def test_a_host_whose_qemus_all_die_fails_over_by_priority(tmp_path: Path, guest: Guest) -> None:
    ports = free_port_block(2)
    hi = _patient(guest_target("hi", ports, guest, host="a", priority=5))
    lo = _patient(guest_target("lo", ports + 1, guest, host="a", priority=1))
    hosts = [{"name": "a", "memory_mib": 1024}, {"name": "b", "memory_mib": 256}]
    spec = _spec(tmp_path, guest, [hi, lo], hosts)
    with controller(spec) as run:
        first = wait_for(lambda: _all_healthy(spec), "both guests healthy on host a", timeout=_BOOT_S)
        for view in first.values():
            os.kill(view["pid"], signal.SIGKILL)
        # The higher priority's move is a cold boot on host b: under TCG on a busy machine, minutes.
        moved = wait_for(
            lambda: len(_migrations(tmp_path / "n.db")) == 2 and _migrations(tmp_path / "n.db"),
            "2 moves",
            timeout=_BOOT_S,
        )
        by_target = {a.action.target: a for a in moved}
        assert by_target["hi"].status is ActionStatus.VERIFIED, by_target["hi"].detail
        assert "a → b" in (by_target["hi"].detail or "")
        assert by_target["lo"].status is ActionStatus.FAILED
        assert "no other host has room" in (by_target["lo"].detail or "")
        [failed] = _logged(run, "VM host failed; its guests restart on the other hosts")
        assert failed["host"] == "a"
        assert "QEMU processes of host a ended" in failed["reason"]
        views = {t["name"]: t for t in cli_json("status", "-c", str(spec))["targets"]}
        assert views["hi"]["state"] == "healthy"
        # One owner per guest's repair: whatever a probe set going before the host was found
        # failed, nothing is left in flight, and the guests' incidents end with the failover's outcome.
        assert _in_flight(tmp_path / "n.db") == []
        for incident in _incidents(tmp_path / "n.db"):
            if incident.target == "hi":
                assert incident.status is IncidentStatus.RESOLVED
            else:
                assert incident.status is IncidentStatus.NEEDS_HUMAN


def _beat(db: Path, node: str, stop: threading.Event) -> None:
    """Be controller node ``node`` in the store: register it and beat until ``stop``."""
    store = Store.open(f"sqlite:///{db}")
    try:
        now = time.time()
        row = nodes.NodeRow(node, "peer", socket.gethostname(), os.getpid(), "t", None, now, now, "active")
        with store.engine.begin() as conn:
            nodes.register(conn, row, stale_s=1.0)
        while not stop.wait(0.2):
            with store.engine.begin() as conn:
                nodes.beat(conn, node, "peer", now=time.time(), targets=0)
    finally:
        store.close()


@pytest.mark.timeout(400)
def test_a_host_whose_node_stops_beating_fails_over(tmp_path: Path, guest: Guest) -> None:
    web = guest_target("web", free_port_block(1), guest, host="a")
    hosts = [{"name": "a", "memory_mib": 512, "node": "hv-a"}, {"name": "b", "memory_mib": 512}]
    spec = _spec(tmp_path, guest, [web], hosts)
    stop = threading.Event()
    with controller(spec) as run:
        beating = threading.Thread(target=_beat, args=(tmp_path / "n.db", "hv-a", stop), daemon=True)
        beating.start()
        first = wait_for(lambda: _all_healthy(spec), "the guest healthy on host a", timeout=_BOOT_S)
        assert not _logged(run, "VM host failed; its guests restart on the other hosts")
        stop.set()
        beating.join()
        [moved] = wait_for(lambda: _migrations(tmp_path / "n.db"), "the guest moved", timeout=_BOOT_S)
        assert moved.status is ActionStatus.VERIFIED, moved.detail
        assert "a → b" in (moved.detail or "")
        assert "node hv-a of host a lost its heartbeat" in (moved.detail or "")
        again = wait_for(lambda: _all_healthy(spec), "the guest healthy on host b", timeout=_BOOT_S)
        assert again["web"]["pid"] != first["web"]["pid"]
