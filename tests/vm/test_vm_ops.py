"""Live migration, snapshot and rollback, and refusals, on a real guest between two hosts.

One guest boots once; everything runs through the controller's executor (``heal``), as
an operator's request does.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from novacron.actuators.qemu_guest import Guest, guest_target
from novacron.demo.fleet import free_port_block
from novacron.model import ActionKind, ActionStatus
from novacron.runtime.controller import Controller
from novacron.settings import parse_spec

_BOOT_S = 240.0


@pytest.fixture
async def ctl(tmp_path: Path, guest: Guest) -> AsyncIterator[Controller]:
    target = guest_target("web", free_port_block(1), guest, host="a")
    spec = parse_spec(
        {
            "policy": {"verify_timeout_s": _BOOT_S},
            "controller": {"store_url": f"sqlite:///{tmp_path / 'n.db'}", "workdir": str(tmp_path / "work")},
            "hosts": [
                {"name": "a", "memory_mib": 1024},
                {"name": "b", "memory_mib": 1024},
                {"name": "c", "memory_mib": 128},
            ],
            "targets": [target.model_dump(mode="json")],
        }
    )
    controller = Controller(spec)
    await controller.start()
    try:
        async with asyncio.timeout(_BOOT_S):
            while controller.status()[0].health.value != "healthy":
                await asyncio.sleep(0.1)
        yield controller
    finally:
        await controller.stop()


def _get(ctl: Controller, path: str) -> str:
    port = ctl.spec.target("web").port
    return httpx.get(f"http://127.0.0.1:{port}{path}", timeout=10).text.strip()


class _Poller:
    """GET /health every 100 ms from a thread (light load), counting failures."""

    def __init__(self, url: str) -> None:
        self.url, self.ok, self.failed = url, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        with httpx.Client(timeout=2) as client:
            while not self._stop.is_set():
                try:
                    client.get(self.url).raise_for_status()
                    self.ok += 1
                except httpx.HTTPError:
                    self.failed += 1
                time.sleep(0.1)

    def __enter__(self) -> _Poller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


async def _heal(ctl: Controller, kind: ActionKind, **params: Any) -> tuple[ActionStatus, str, dict[str, Any]]:
    result = await ctl.heal("web", kind, who="test", params=params)
    return result.status, result.detail, dict(result.outcome.data) if result.outcome else {}


async def test_live_migration_snapshot_rollback_and_refusals(ctl: Controller) -> None:
    vms = ctl.actuator.vms
    boot = _get(ctl, "/cgi-bin/boot")
    port = ctl.spec.target("web").port

    # Live migration a → b while a client keeps reading: the same boot (no restart), no fault.
    with _Poller(f"http://127.0.0.1:{port}/health") as poller:
        status, detail, data = await _heal(ctl, ActionKind.VM_MIGRATE, to="b")
    assert status is ActionStatus.VERIFIED, detail
    assert (data["mode"], data["from"], data["to"]) == ("live", "a", "b")
    assert data["bytes"] > 0
    assert data["downtime_ms"] <= data["total_ms"]
    assert vms.host_of("web") == "b"
    assert _get(ctl, "/cgi-bin/boot") == boot
    assert poller.ok > 0
    assert ctl.status()[0].last_fault is None, "the health checks never failed"

    # A host without room and the host it is on are refused; the guest keeps running on b.
    pid = ctl.actuator.pids("web")
    status, detail, _ = await _heal(ctl, ActionKind.VM_MIGRATE, to="c")
    assert status is ActionStatus.FAILED
    assert "cannot migrate web#0 to c: host c has 128 MiB free, the guest needs 256 MiB" in detail
    status, detail, _ = await _heal(ctl, ActionKind.VM_MIGRATE, to="b")
    assert "already runs on b" in detail
    assert ctl.actuator.pids("web") == pid
    assert vms.host_of("web") == "b"

    # Snapshot, reboot (a new boot id), roll back: the snapshot's boot is back.
    status, detail, data = await _heal(ctl, ActionKind.VM_SNAPSHOT, name="before")
    assert status is ActionStatus.VERIFIED, detail
    assert data["bytes"] > 0
    status, detail, _ = await _heal(ctl, ActionKind.RESTART)
    assert status is ActionStatus.VERIFIED, detail
    assert _get(ctl, "/cgi-bin/boot") != boot
    status, detail, _ = await _heal(ctl, ActionKind.VM_ROLLBACK, name="before")
    assert status is ActionStatus.VERIFIED, detail
    assert _get(ctl, "/cgi-bin/boot") == boot
    status, detail, _ = await _heal(ctl, ActionKind.VM_ROLLBACK, name="nope")
    assert "has no snapshot 'nope' to roll back to (its snapshots: before)" in detail

    # vCPU hot-plug beyond max_cpus is refused cleanly; the guest is untouched.
    status, detail, _ = await _heal(ctl, ActionKind.VM_RESIZE, cpus=2)
    assert status is ActionStatus.FAILED
    assert "only 1 vCPUs fit (the guest's max_cpus)" in detail
    assert _get(ctl, "/health") == "ok"
