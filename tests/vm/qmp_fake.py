"""A QMP server of our own on a unix socket, scripted per command, for the error paths.

It speaks the protocol's framing (greeting, capability negotiation, one JSON object per
line, replies carrying the request's id, asynchronous events) and answers each command
from a script: a result, an error, silence (for timeouts), or dropping the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Reply = Any  # a result, an Error, HANG or DROP, or a callable computing one from the arguments

HANG = object()
DROP = object()


@dataclass(frozen=True)
class Error:
    """A QMP error reply."""

    desc: str
    cls: str = "GenericError"


@dataclass
class FakeQmp:
    """The server; ``script`` maps command names to replies (a list is consumed in order)."""

    path: Path
    script: dict[str, Reply | list[Reply]] = field(default_factory=dict)
    received: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    _server: asyncio.Server | None = None
    _writers: list[asyncio.StreamWriter] = field(default_factory=list)

    async def start(self) -> None:
        """Listen on ``path``."""
        self._server = await asyncio.start_unix_server(self._serve, path=str(self.path))

    async def close(self) -> None:
        """Stop listening and drop every connection."""
        for writer in self._writers:
            writer.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def emit(self, event: str, data: dict[str, Any] | None = None) -> None:
        """Send an event to every client."""
        for writer in self._writers:
            await _send(writer, {"event": event, "data": data or {}, "timestamp": {"seconds": 0, "microseconds": 0}})

    def commands(self) -> list[str]:
        """The names of the commands received, in order."""
        return [name for name, _ in self.received]

    def _reply_for(self, command: str, arguments: dict[str, Any]) -> Reply:
        if command == "qmp_capabilities":
            return {}
        entry = self.script.get(command, {})
        if isinstance(entry, list):
            entry = entry.pop(0) if len(entry) > 1 else entry[0]
        return entry(arguments) if isinstance(entry, Callable) else entry  # type: ignore[arg-type]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)
        greeting = {
            "QMP": {"version": {"qemu": {"major": 7, "minor": 2, "micro": 0}, "package": ""}, "capabilities": []}
        }
        await _send(writer, greeting)
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            async for msg in _messages(reader):
                command, arguments = msg["execute"], msg.get("arguments", {})
                self.received.append((command, arguments))
                reply = self._reply_for(command, arguments)
                if reply is HANG:
                    continue
                if reply is DROP:
                    writer.close()
                    return
                body = (
                    {"error": {"class": reply.cls, "desc": reply.desc}}
                    if isinstance(reply, Error)
                    else {"return": reply}
                )
                await _send(writer, {**body, "id": msg.get("id")})


async def _messages(reader: asyncio.StreamReader) -> AsyncIterator[dict[str, Any]]:
    """JSON objects as they arrive (QMP clients need not end them with a newline)."""
    decoder, buffer = json.JSONDecoder(), ""
    while chunk := await reader.read(4096):
        buffer += chunk.decode()
        while buffer.strip():
            try:
                msg, end = decoder.raw_decode(buffer.lstrip())
            except json.JSONDecodeError:
                break  # an incomplete object: wait for more
            buffer = buffer.lstrip()[end:]
            yield msg


async def _send(writer: asyncio.StreamWriter, obj: dict[str, Any]) -> None:
    writer.write(json.dumps(obj).encode() + b"\r\n")
    await writer.drain()


Script = Callable[[dict[str, Any]], Reply]
