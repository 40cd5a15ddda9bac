"""A fleet of remote HTTP targets on one loopback port, for ``kind: remote`` demos, tests and benchmarks.

``GET /t/NAME`` answers 200 while target NAME is healthy and 500 while it is faulted.
``POST /act`` is every target's ``action_url``: it records the action (key, kind,
target, the fencing token it carries) and a ``restart`` or ``replace`` heals the target.
It is also the resource that fences: an action whose epoch is older than one already
seen on its shard, or that arrives after the ``valid_until`` its fence carries (the
sender was paused between its lease check and the request), is refused with 409 and
counted as stale. ``POST /fault/NAME`` faults
a target, ``GET /actions`` lists what was applied (``GET /actions/NAME``: to one target), ``GET /faulted`` the
targets faulted now.

It is a bare asyncio HTTP/1.1 server (keep-alive, no framework) so that one process can
answer thousands of probes a second.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

__all__ = ["RemoteFleet", "main"]


@dataclass
class RemoteFleet:
    """The targets' health and the actions applied to them."""

    faulted: dict[str, float] = field(default_factory=dict)  # target → when it was faulted
    actions: list[dict[str, Any]] = field(default_factory=list)
    max_epoch: dict[int, int] = field(default_factory=dict)  # shard → newest epoch seen
    stale: int = 0
    keys: dict[str, int] = field(default_factory=dict)  # idempotency key → times applied

    def fault(self, name: str) -> None:
        """Make ``name`` answer 500 until an action heals it."""
        self.faulted[name] = time.time()

    def act(self, body: dict[str, Any]) -> int:
        """Apply one action; the HTTP status to answer."""
        fence = body.get("fence") or {}
        shard, epoch = fence.get("shard"), fence.get("epoch")
        if isinstance(shard, int) and isinstance(epoch, int):
            deadline = fence.get("valid_until")
            late = isinstance(deadline, int | float) and time.time() > deadline
            if epoch < self.max_epoch.get(shard, 0) or late:
                self.stale += 1
                return 409
            self.max_epoch[shard] = epoch
        key = str(body.get("key"))
        self.keys[key] = self.keys.get(key, 0) + 1
        self.actions.append({**body, "at": time.time()})
        if body.get("kind") in ("restart", "replace"):
            self.faulted.pop(str(body.get("target")), None)
        return 200

    def summary(self) -> dict[str, Any]:
        """Counts for tests and benchmarks."""
        return {
            "actions": len(self.actions),
            "duplicate_keys": sum(1 for n in self.keys.values() if n > 1),
            "stale_epochs": self.stale,
            "faulted": len(self.faulted),
        }

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one keep-alive connection."""
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                method, path, headers = _parse(head)
                body = await reader.readexactly(int(headers.get("content-length", "0") or 0))
                status, payload = self._route(method, path, body)
                data = json.dumps(payload).encode()
                writer.write(
                    b"HTTP/1.1 %d X\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
                    % (status, len(data), data)
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError, ValueError):
            pass
        finally:
            writer.close()

    def _route(self, method: str, path: str, body: bytes) -> tuple[int, Any]:
        if method == "GET" and path.startswith("/t/"):
            name = path[3:]
            return (500, "faulted") if name in self.faulted else (200, "ok")
        if method == "POST" and path == "/act":
            return self.act(json.loads(body or b"{}")), "ok"
        if method == "POST" and path.startswith("/fault/"):
            self.fault(path[len("/fault/") :])
            return 200, "faulted"
        if method == "GET" and path == "/actions":
            return 200, self.actions
        if method == "GET" and path.startswith("/actions/"):
            name = path[len("/actions/") :]
            return 200, [a for a in self.actions if a.get("target") == name]
        if method == "GET" and path == "/faulted":
            return 200, sorted(self.faulted)
        if method == "GET" and path == "/summary":
            return 200, self.summary()
        return 404, "no such path"


def _parse(head: bytes) -> tuple[str, str, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    return method, path, headers


async def serve(
    fleet: RemoteFleet, port: int, ready: asyncio.Future[int] | None = None, *, host: str = "127.0.0.1"
) -> None:
    """Serve ``fleet`` on ``host``:``port`` (0: a free one, reported through ``ready``) until cancelled."""
    server = await asyncio.start_server(fleet.handle, host, port, backlog=4096)
    if ready is not None:
        ready.set_result(server.sockets[0].getsockname()[1])
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    """``python -m novacron.demo.remote [--host H] --port P``: serve remote targets; prints the port when ready."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)

    async def run() -> None:
        ready: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(serve(RemoteFleet(), args.port, ready, host=args.host))
        print(await ready, flush=True)
        await task

    asyncio.run(run())


if __name__ == "__main__":
    main()
