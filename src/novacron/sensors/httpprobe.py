"""A minimal keep-alive HTTP/1.1 GET client for health probes.

Health probes are tiny, frequent and latency-sensitive: hundreds of targets at 10–20 Hz
on one event loop. A general-purpose client spends most of that budget on machinery a
probe does not need, so this one keeps one connection per check, writes a prebuilt
request and parses only the status line and the body length.
"""

from __future__ import annotations

import asyncio
import ssl
from urllib.parse import urlsplit

__all__ = ["HttpProbeClient"]


class _Conn(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.waiter: asyncio.Future[int] | None = None
        self.open = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.waiter is not None and not self.waiter.done():
            status = _parse(self.buf)
            if status is not None:
                self.waiter.set_result(status)

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionResetError("connection closed by peer"))


def _parse(buf: bytearray) -> int | None:
    """Consume one complete response from ``buf``; return its status, or None if incomplete."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = bytes(buf[:end]).decode("latin-1").split("\r\n")
    parts = head[0].split(" ", 2)
    status = int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else 0
    headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in head[1:])}
    body_start = end + 4
    if headers.get("transfer-encoding", "").lower() == "chunked":
        term = buf.find(b"0\r\n\r\n", body_start)
        if term < 0:
            return None
        del buf[: term + 5]
        return status
    length = int(headers.get("content-length", "0") or 0)
    if len(buf) < body_start + length:
        return None
    del buf[: body_start + length]
    return status


class HttpProbeClient:
    """GETs one URL over a kept-alive connection; ``await get(timeout)`` returns the status."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.tls = parts.scheme == "https"
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._request = (
            f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nUser-Agent: novacron-probe\r\n"
            "Connection: keep-alive\r\n\r\n"
        ).encode()
        self._conn: _Conn | None = None

    async def _connect(self) -> _Conn:
        loop = asyncio.get_running_loop()
        ctx = ssl.create_default_context() if self.tls else None
        _, conn = await loop.create_connection(_Conn, self.host, self.port, ssl=ctx)
        return conn

    async def get(self, timeout: float) -> int:
        """One GET; raises TimeoutError or OSError on failure.

        While a GET is still waiting on the kept-alive connection (a suspected probe kept
        open beside its confirmation), another one goes over a connection of its own, so
        it neither steals the first one's answer nor shares its fate.
        """
        if self._conn is not None and self._conn.waiter is not None:
            return await self._get_alone(timeout)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            if self._conn is None or not self._conn.open:
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a
                # cancellation that races with completion, leaving the probe loop running.
                async with asyncio.timeout(timeout):
                    self._conn = await self._connect()
            conn = self._conn
            conn.buf.clear()
            waiter: asyncio.Future[int] = loop.create_future()
            conn.waiter = waiter
            assert conn.transport is not None
            conn.transport.write(self._request)
            handle = loop.call_at(deadline, _expire, waiter)
            try:
                return await waiter
            finally:
                handle.cancel()
                conn.waiter = None
        except BaseException:
            # Any failure leaves the connection in an unknown state (a late response
            # would be read as the next probe's): start afresh next time.
            self.close()
            raise

    async def _get_alone(self, timeout: float) -> int:
        """One GET over a fresh connection, closed afterwards."""
        loop = asyncio.get_running_loop()
        conn: _Conn | None = None
        try:
            async with asyncio.timeout(timeout):
                conn = await self._connect()
                waiter: asyncio.Future[int] = loop.create_future()
                conn.waiter = waiter
                assert conn.transport is not None
                conn.transport.write(self._request)
                return await waiter
        finally:
            if conn is not None and conn.transport is not None:
                conn.transport.abort()

    def close(self) -> None:
        """Drop the connection."""
        if self._conn is not None and self._conn.transport is not None:
            self._conn.transport.abort()
        self._conn = None


def _expire(waiter: asyncio.Future[int]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError("no response within the probe timeout"))
