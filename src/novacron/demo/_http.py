"""The bits of HTTP/1.1 a demo service speaks: header parsing, responses, a tiny client.

Standard library only, and as light as :mod:`novacron.demo.service` (see there for why).
"""

from __future__ import annotations

import socket

__all__ = ["MAX_HEADERS", "get_status", "read_headers", "response"]

MAX_HEADERS = 100
_UPSTREAM_TIMEOUT_S = 0.5
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
            413: "Payload Too Large", 431: "Request Header Fields Too Large",
            500: "Internal Server Error", 502: "Bad Gateway",
            503: "Service Unavailable"}  # fmt: skip

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable


def read_headers(readline: Callable[[int], bytes]) -> dict[str, str] | None:
    """Header lines up to the blank line, lower-cased names; None past ``MAX_HEADERS``."""
    headers: dict[str, str] = {}
    for _ in range(MAX_HEADERS):
        line = readline(8193)
        if line in (b"\r\n", b"\n", b""):
            return headers
        key, _, value = line.decode("latin-1").partition(":")
        headers[key.strip().lower()] = value.strip()
    return None


def response(code: int, ctype: str, body: bytes, *, close: bool) -> bytes:
    """A whole HTTP/1.1 response, ready for one ``sendall`` (one segment, no Nagle wait)."""
    head = (
        f"HTTP/1.1 {code} {_REASONS.get(code, 'Unknown')}\r\nContent-Type: {ctype}\r\n"
        f"Content-Length: {len(body)}\r\n{'Connection: close' if close else 'Connection: keep-alive'}\r\n\r\n"
    )
    return head.encode("latin-1") + body


def get_status(host: str, port: int, path: str) -> int:
    """GET ``path`` from an upstream; its status code, or 0 if it did not answer in time."""
    try:
        with socket.create_connection((host, port), timeout=_UPSTREAM_TIMEOUT_S) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while b"\r\n" not in data and len(data) < 8192:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        return int(data.split(b" ", 2)[1])
    except (OSError, ValueError, IndexError):
        return 0
