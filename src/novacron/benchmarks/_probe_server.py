"""A load target for the probe benchmark: one process answering ``GET /health`` on many ports.

Run as ``python -m novacron.benchmarks._probe_server FIRST_PORT COUNT``; prints ``ready``
once every port listens. With FIRST_PORT 0 the listeners take the first COUNT free ports
found from a random point of 20000–32000 and the line is ``ready P1,P2,…``: thousands of
targets need no block of consecutive free ports. The range stays below Linux's ephemeral
ports (32768–60999) on purpose: thousands of listeners there make every outgoing
connect() search longer for a source port (1.5 ms each at 5,000, measured).
Kept free of project imports so it starts fast.
"""

from __future__ import annotations

import asyncio
import random
import resource
import sys

_REPLY = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"


class _Health(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.buf = b""

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while b"\r\n\r\n" in self.buf:
            _, self.buf = self.buf.split(b"\r\n\r\n", 1)
            self.transport.write(_REPLY)


_SCAN = (20_000, 32_000)


async def _listen_any(loop: asyncio.AbstractEventLoop, count: int) -> list[asyncio.Server]:
    span = _SCAN[1] - _SCAN[0]
    start = random.randrange(span)
    servers: list[asyncio.Server] = []
    for offset in range(span):
        if len(servers) == count:
            break
        port = _SCAN[0] + (start + offset) % span
        try:
            servers.append(await loop.create_server(_Health, "127.0.0.1", port, backlog=64))
        except OSError:
            continue  # taken: the next one
    if len(servers) < count:
        raise SystemExit(f"only {len(servers)} free ports in {_SCAN[0]}-{_SCAN[1]}")
    return servers


async def _serve(first: int, count: int) -> None:
    loop = asyncio.get_running_loop()
    if first:
        servers = [await loop.create_server(_Health, "127.0.0.1", first + i, backlog=64) for i in range(count)]
        sys.stdout.write("ready\n")
    else:
        servers = await _listen_any(loop, count)
        sys.stdout.write("ready " + ",".join(str(s.sockets[0].getsockname()[1]) for s in servers) + "\n")
    sys.stdout.flush()
    await asyncio.gather(*(s.serve_forever() for s in servers))


def _raise_fd_limit() -> None:
    # Each target is a listener and an accepted connection: two descriptors.
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


if __name__ == "__main__":
    _raise_fd_limit()
    asyncio.run(_serve(int(sys.argv[1]), int(sys.argv[2])))
