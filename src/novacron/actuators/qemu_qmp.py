"""One QMP session with one QEMU: commands with deadlines, and its events as a stream.

The only module that imports the QMP client library (``qemu.qmp``). Every failure —
a socket that is missing or refuses, a command QEMU rejects, a reply that does not come
in time, a session that drops — is raised as :class:`QmpError` naming the VM and the
command, so the actuator above reports it instead of crashing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from qemu.qmp import ConnectError, EventListener, ExecuteError, QMPClient, QMPError, Runstate, StateError

from novacron.errors import ActuatorError

__all__ = ["QmpError", "QmpSession"]

# The library logs every failed connect attempt and dropped session as an error; here
# each is retried or raised as a QmpError naming the VM, so its own log would only repeat it.
logging.getLogger("qemu.qmp").setLevel(logging.CRITICAL)

# A QMP event as QEMU sends it: {"event": NAME, "data": {...}, "timestamp": {...}}.
EventSink = Callable[[str, Mapping[str, Any]], None]


class QmpError(ActuatorError):
    """A QMP command could not be carried out (QEMU said no, the socket failed, or time ran out)."""


class QmpSession:
    """A connected QMP client for one VM, forwarding every event to ``on_event``."""

    def __init__(self, name: str, on_event: EventSink) -> None:
        self.name = name
        self._on_event = on_event
        self._client = QMPClient(name)
        self._listener = EventListener()
        self._pump: asyncio.Task[None] | None = None
        self._reaper: asyncio.Task[None] | None = None
        self._closing = False
        self._disconnecting = asyncio.Lock()

    async def connect(self, socket_path: Path, *, timeout: float = 5.0) -> None:
        """Connect to QEMU's QMP socket, retrying while QEMU is still creating it."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            try:
                async with asyncio.timeout(max(0.05, deadline - asyncio.get_running_loop().time())):
                    await self._client.connect(str(socket_path))
                break
            except (ConnectError, OSError, TimeoutError) as exc:
                if asyncio.get_running_loop().time() >= deadline:
                    raise QmpError(f"{self.name}: cannot reach the QMP socket {socket_path}: {_why(exc)}") from exc
                self._client = QMPClient(self.name)
                await asyncio.sleep(0.05)
        self._client.register_listener(self._listener)
        self._pump = asyncio.get_running_loop().create_task(self._forward_events())
        self._reaper = asyncio.get_running_loop().create_task(self._reap())

    async def execute(
        self, command: str, arguments: Mapping[str, object] | None = None, *, timeout: float = 10.0
    ) -> Any:
        """Run one QMP command and return its result."""
        try:
            async with asyncio.timeout(timeout):
                return await self._client.execute(command, arguments)
        except ExecuteError as exc:
            raise QmpError(f"{self.name}: {command} refused: {exc.error.error.desc}") from exc
        except TimeoutError as exc:
            raise QmpError(f"{self.name}: {command} got no answer within {timeout:g}s") from exc
        except (QMPError, StateError, OSError, EOFError) as exc:
            raise QmpError(f"{self.name}: {command} failed, the QMP session is gone: {_why(exc)}") from exc

    async def hmp(self, command_line: str, *, timeout: float = 10.0, success: str = "") -> str:
        """Run a human-monitor command (for what QMP lacks, like ``hostfwd_add``).

        HMP answers errors as text, not as QMP errors: any answer is an error, but one
        starting with ``success`` (some commands confirm, like ``hostfwd_remove``).
        """
        out = await self.execute("human-monitor-command", {"command-line": command_line}, timeout=timeout)
        text = str(out or "").strip()
        if text and not (success and text.startswith(success)):
            raise QmpError(f"{self.name}: {command_line!r}: {text}")
        return text

    async def close(self) -> None:
        """Disconnect (QEMU keeps running)."""
        self._closing = True
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
        await self._disconnect()
        if self._reaper is not None:
            # Waited for, never cancelled (``asyncio.timeout`` around ``await task`` would
            # cancel it): cancelled inside the library's disconnect, it would leave the
            # library's own gathered tasks cancelled with nobody to see it. The session is
            # disconnected now, so it ends by itself.
            await asyncio.wait({self._reaper}, timeout=2.0)

    async def _reap(self) -> None:
        """When QEMU hangs up, finish the session at once.

        The library ends its reader with the hang-up's ``EOFError`` and keeps it until
        someone disconnects; finishing here retrieves it, so no task is left with an
        exception nobody saw (whoever uses the session next gets a QmpError).
        """
        while self._client.runstate not in (Runstate.DISCONNECTING, Runstate.IDLE):
            await self._client.runstate_changed()
        if not self._closing:
            await self._disconnect()

    async def _disconnect(self) -> None:
        # One at a time (the reaper and close() may both get here): the library's disconnect
        # does not take two overlapping calls. The hang-up itself (EOFError, a reset) is
        # expected here: the session is over either way.
        async with self._disconnecting:
            with contextlib.suppress(QMPError, OSError, EOFError, StateError):
                await self._client.disconnect()

    async def _forward_events(self) -> None:
        async for event in self._listener:
            data = event.get("data")
            self._on_event(str(event["event"]), data if isinstance(data, Mapping) else {})


def _why(exc: BaseException) -> str:
    cause = exc.__cause__ or exc.__context__
    text = str(exc) or type(exc).__name__
    if isinstance(exc, ConnectError) and cause is not None:
        text = f"{cause}"
    return text
