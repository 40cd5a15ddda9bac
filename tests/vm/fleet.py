"""A one-guest fleet for the tests that run real guests, and waiting for it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from novacron.actuators.qemu_guest import Guest, guest_target
from novacron.demo.fleet import free_port_block
from tests.cli.runner import cli_json

BOOT_S = 240.0  # a TCG boot on a loaded two-core machine


def vm_spec(tmp_path: Path, guest: Guest, *, name: str, hosts: tuple[str, ...] = ("a",), **vm: Any) -> dict[str, Any]:
    """A spec with one guest ``web`` on host ``a`` (``vm`` goes to its vm block)."""
    target = guest_target("web", free_port_block(1), guest, host="a", **vm)
    return {
        "name": name,
        "hosts": [{"name": h, "memory_mib": 1024} for h in hosts],
        "policy": {"verify_timeout_s": BOOT_S, "backoff": {"base_s": 0.1}},
        "controller": {"store_url": f"sqlite:///{tmp_path / 'n.db'}", "workdir": str(tmp_path / "work")},
        "targets": [target.model_dump(mode="json")],
    }


def healthy(spec: Path, *, not_pid: int | None = None) -> dict[str, Any] | None:
    """The guest's status line once it is healthy (on another QEMU than ``not_pid``), else None."""
    [web] = cli_json("status", "-c", str(spec))["targets"]
    ok = web["state"] == "healthy" and web["pid"] is not None and web["pid"] != not_pid
    return dict(web) if ok else None


async def until(pred: Callable[[], object], what: str, timeout: float = BOOT_S) -> None:
    """Wait until ``pred()`` holds; a timeout names ``what`` was awaited."""
    try:
        async with asyncio.timeout(timeout):
            while not pred():
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None
