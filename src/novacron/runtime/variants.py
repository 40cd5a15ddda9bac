"""An experiment's variant: one process on a free port, started and stopped by the runner.

A variant that exits or does not listen within its start timeout is a bad input, reported
with the tail of its log, and leaves nothing running.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
from pathlib import Path

from novacron.clock import Clock
from novacron.errors import InputError
from novacron.settings import ExperimentSpec

__all__ = ["Variant", "free_port"]


def free_port() -> int:
    """A TCP port on loopback that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Variant:
    """One variant process."""

    def __init__(self, spec: ExperimentSpec, *, log_dir: Path, clock: Clock) -> None:
        self.spec, self._clock = spec, clock
        self.log_path = log_dir / f"experiment-{spec.name}-{spec.arm}.log"
        self.port = 0
        self._proc: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int | None:
        """The process id while it runs."""
        return self._proc.pid if self._proc is not None and self._proc.returncode is None else None

    async def start(self) -> int:
        """Start the command with ``{port}`` filled; return the port once it accepts connections."""
        self.port = free_port()
        argv = [a.replace("{port}", str(self.port)) for a in self.spec.command]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            try:
                self._proc = await asyncio.create_subprocess_exec(
                    *argv,
                    stdout=log,
                    stderr=log,
                    env={**os.environ, **self.spec.env},
                    start_new_session=True,
                )
            except OSError as exc:
                raise InputError(f"variant command did not start: {exc}", where="command") from exc
        try:
            await self._wait_listening(self.spec.start_timeout_s)
        except InputError:
            await self.stop()
            raise
        return self.port

    async def _wait_listening(self, timeout: float) -> None:
        deadline = self._clock.monotonic() + timeout
        while self._clock.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.returncode is not None:
                raise InputError(
                    f"variant command exited with {self._proc.returncode}: {self._tail()}", where="command"
                )
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.close()
                return
            await asyncio.sleep(0.05)
        raise InputError(
            f"variant did not listen on port {self.port} within {timeout:g}s: {self._tail()}", where="command"
        )

    def _tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-300:].strip() or "(no output)"
        except OSError:
            return "(no output)"

    async def stop(self) -> None:
        """SIGTERM to the variant's process group, SIGKILL after five seconds."""
        proc, self._proc = self._proc, None
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 5.0)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
