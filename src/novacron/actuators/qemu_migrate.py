"""Moving a guest's state: live migration between two QEMUs, and saving it to or loading it from a file.

All three are QEMU's migration stream. A live migration streams to a destination QEMU
waiting with ``-incoming defer``; a snapshot streams to a file (``exec:cat > FILE``) and
the guest runs on; a rollback is a fresh QEMU loading that file. :func:`migrate` waits
for the stream to complete, cancels it on a deadline, and reports QEMU's own figures:
total time, downtime (the guest paused for the final copy) and bytes transferred.
"""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from novacron.actuators.qemu_qmp import QmpError

__all__ = ["POLL_S", "MigrationStats", "Monitor", "file_uri", "load_uri", "migrate", "receive", "wait_running"]


class Monitor(Protocol):
    """Anything that runs QMP commands for a named QEMU (a process, or a bare session)."""

    name: str

    async def execute(
        self, command: str, arguments: Mapping[str, object] | None = None, *, timeout: float = 10.0
    ) -> Any:
        """Run one QMP command."""
        ...


POLL_S = 0.01  # how often query-migrate is asked
# Loopback and files are fast: no reason to let QEMU's default 32 MiB/s cap stretch a migration.
_MAX_BANDWIDTH = 8 << 30
_DOWNTIME_LIMIT_MS = 300


@dataclass(frozen=True, slots=True)
class MigrationStats:
    """QEMU's account of one completed migration."""

    total_ms: float
    downtime_ms: float
    bytes: int

    def as_dict(self) -> dict[str, float | int]:
        """JSON-ready figures."""
        return {"total_ms": self.total_ms, "downtime_ms": self.downtime_ms, "bytes": self.bytes}


def file_uri(path: Path) -> str:
    """The migration URI that writes the stream to ``path``."""
    return f"exec:cat > {shlex.quote(str(path))}"


def load_uri(path: Path) -> str:
    """The incoming URI that reads a saved stream from ``path``."""
    return f"exec:cat {shlex.quote(str(path))}"


async def receive(dest: Monitor, uri: str) -> None:
    """Have ``dest`` (started with ``-incoming defer``) listen on or read from ``uri``."""
    await dest.execute("migrate-incoming", {"uri": uri})


async def migrate(src: Monitor, uri: str, *, timeout: float) -> MigrationStats:
    """Stream ``src``'s state to ``uri`` and wait for completion (cancelled at ``timeout``)."""
    await src.execute("migrate-set-parameters", {"max-bandwidth": _MAX_BANDWIDTH, "downtime-limit": _DOWNTIME_LIMIT_MS})
    await src.execute("migrate", {"uri": uri})
    try:
        async with asyncio.timeout(timeout):
            return await _until_done(src)
    except TimeoutError:
        await _cancel(src)
        raise QmpError(f"{src.name}: migration did not complete within {timeout:g}s (cancelled)") from None
    except QmpError:
        await _cancel(src)
        raise


async def _until_done(src: Monitor) -> MigrationStats:
    while True:
        info = await src.execute("query-migrate")
        status = info.get("status")
        if status == "completed":
            ram = info.get("ram") or {}
            return MigrationStats(
                float(info.get("total-time", 0)), float(info.get("downtime", 0)), int(ram.get("transferred", 0))
            )
        if status in ("failed", "cancelled"):
            raise QmpError(f"{src.name}: migration {status}: {info.get('error-desc', 'no reason given')}")
        await asyncio.sleep(POLL_S)


async def _cancel(src: Monitor) -> None:
    try:
        await src.execute("migrate_cancel", timeout=2.0)
        if (await src.execute("query-status", timeout=2.0))[
            "status"
        ] != "running":  # a cancelled migration may leave the guest paused
            await src.execute("cont", timeout=2.0)
    except QmpError:
        pass  # the source is gone too: its exit is reported on its own


async def wait_running(dest: Monitor, *, timeout: float) -> str:
    """Wait until an incoming QEMU has the whole state (it leaves ``inmigrate``)."""
    try:
        async with asyncio.timeout(timeout):
            while True:
                status = str((await dest.execute("query-status"))["status"])
                if status not in ("inmigrate", "prelaunch"):
                    return status
                await asyncio.sleep(POLL_S)
    except TimeoutError:
        raise QmpError(f"{dest.name}: the incoming state did not arrive within {timeout:g}s") from None
