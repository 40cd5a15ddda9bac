"""A load target for the probe benchmark: one process answering ``GET /health`` on many ports.

Run as ``python -m novacron.benchmarks._probe_server FIRST_PORT COUNT``; prints ``ready``
once every port listens. Kept free of project imports so it starts fast.
"""

from __future__ import annotations

import asyncio
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


async def _serve(first: int, count: int) -> None:
    loop = asyncio.get_running_loop()
    servers = [await loop.create_server(_Health, "127.0.0.1", first + i, backlog=64) for i in range(count)]
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    await asyncio.gather(*(s.serve_forever() for s in servers))


if __name__ == "__main__":
    asyncio.run(_serve(int(sys.argv[1]), int(sys.argv[2])))
