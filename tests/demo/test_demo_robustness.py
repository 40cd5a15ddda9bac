"""Garbage on the wire never takes a demo service down; the start-up probe reports sane figures."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from novacron.demo.startup import measure_startup
from tests.demo.demo_helpers import Running, Services

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def live() -> Iterator[Running]:
    services = Services()
    try:
        yield services.start("fuzzed")
    finally:
        services.close()


def _send(port: int, payload: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


_METHODS = st.sampled_from([b"GET", b"POST", b"PUT", b"HEAD", b"", b"G\x00T"])
_PATHS = st.sampled_from([b"/", b"/health", b"/metrics", b"/chaos", b"/x?y=1", b"", b"\xff"])
_HEADERS = st.lists(st.binary(max_size=40).filter(lambda b: b"\n" not in b), max_size=4)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    method=_METHODS,
    path=_PATHS,
    headers=_HEADERS,
    length=st.sampled_from([b"", b"-1", b"abc", b"99999999", b"3"]),
    body=st.binary(max_size=64),
    raw=st.booleans(),
    junk=st.binary(max_size=200),
)
def test_garbage_requests_never_break_the_service(
    live: Running,
    method: bytes,
    path: bytes,
    headers: list[bytes],
    length: bytes,
    body: bytes,
    raw: bool,
    junk: bytes,
) -> None:
    if raw:
        payload = junk
    else:
        lines = [method + b" " + path + b" HTTP/1.1", *headers]
        if length:
            lines.append(b"Content-Length: " + length)
        payload = b"\r\n".join(lines) + b"\r\n\r\n" + body
    answer = _send(live.port, payload)
    assert answer == b"" or answer.startswith(b"HTTP/1.1 ")
    if b'"mode"' in body:  # a random body may have set a chaos mode; put it back
        httpx.post(live.url + "/chaos", json={"mode": "normal"}, timeout=5)
    assert live.proc.poll() is None
    assert live.get("/health").status_code == 200


def test_startup_measurement_reports_percentiles() -> None:
    result = measure_startup(2)
    assert result["runs"] == 2
    for phase in ("exec_to_first_200_ms", "sigterm_to_exit_ms"):
        figures = result[phase]
        assert 0 < figures["p50"] <= figures["max"]
    with pytest.raises(ValueError, match="runs"):
        measure_startup(0)


def test_too_many_headers_are_refused(live: Running) -> None:
    payload = b"GET /health HTTP/1.1\r\n" + b"X-A: b\r\n" * 150 + b"\r\n"
    assert _send(live.port, payload).startswith(b"HTTP/1.1 431 ")
    assert live.get("/health").status_code == 200
