"""A small real HTTP service for the demo fleet and the healing benchmark.

Run it as ``python -m novacron.demo.service --name api --port 8101 [options]``.

Endpoints: ``GET /health`` (200 ``ok``; 503 in error mode, with a bad config in place or a
full scratch dir), ``GET /metrics`` (Prometheus text), ``GET /`` (a little work plus a call
to each upstream's /health), ``GET /chaos`` and ``POST /chaos`` with JSON
``{"mode": "normal"|"slow"|"error"|"creep"|"spin", "duration_s": 5, "delay_s": 0.5}``.

The server is a thread-per-connection HTTP/1.1 server with keep-alive on bare sockets:
the service is restarted on every healed crash, so start-up time is part of MTTR, and
this starts in a few tens of milliseconds where asyncio or ``http.server`` add 30-40 ms
of imports alone. Threads also let a "slow" answer sleep without blocking the others.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import sys
import threading
import time

from novacron.demo._http import get_status, read_headers, response
from novacron.demo._runtime import (
    CHAOS_MODES,
    ChaosState,
    Metrics,
    Scratch,
    start_filler,
    start_heartbeat,
    start_leaker,
    start_sawtooth,
    start_spin,
)

__all__ = ["Service", "main", "parse_args"]

_MB = 1024 * 1024
_MAX_BODY = 64 * 1024
_MAX_CONNECTIONS = 512
_IDLE_TIMEOUT_S = 60.0
_DRAIN_S = 0.1  # on SIGTERM, in-flight answers get this long to finish

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from io import BufferedReader

    _Reply = tuple[int, str, bytes]


class _Stop(Exception):  # noqa: N818  (a control-flow signal, not an error)
    """Raised by the signal handlers to leave the accept loop."""


def _url(text: str) -> tuple[str, int, str]:
    """Split ``http://host:port[/prefix]`` (argparse type); only plain HTTP is spoken."""
    if not text.startswith("http://"):
        raise argparse.ArgumentTypeError(f"{text!r}: upstream URL must start with http://")
    hostport, _, prefix = text[len("http://") :].partition("/")
    try:
        host, port = _hostport(hostport)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"{text!r}: upstream URL needs host:port") from None
    return host, port, "/" + prefix.rstrip("/") if prefix else ""


def _hostport(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    # isascii: str.isdigit() also accepts digits such as "²" that int() rejects
    if not sep or not host or not (port.isascii() and port.isdigit()) or int(port) > 65535:
        raise argparse.ArgumentTypeError(f"{text!r}: expected HOST:PORT")
    return host, int(port)


def _port(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"{text!r}: a port is a number in [0, 65535]")
    return int(text)


def _positive(text: str) -> float:
    value = float(text)
    if not value >= 0:  # also rejects NaN
        raise argparse.ArgumentTypeError(f"{text!r}: must be a number >= 0")
    return value


def _ratio(text: str) -> float:
    value = _positive(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"{text!r}: must lie in [0, 1]")
    return value


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line (exit 2 with a message on bad flags)."""
    p = argparse.ArgumentParser(prog="python -m novacron.demo.service", description="A demo HTTP service.")
    p.add_argument("--name", required=True, help="service name, also the heartbeat payload")
    p.add_argument("--port", required=True, type=_port)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--upstream", action="append", default=[], type=_url, metavar="URL")
    p.add_argument("--fail-start-file", metavar="PATH", help="if this file exists, refuse to start")
    p.add_argument("--leak-mb-per-s", type=_positive, default=0.0)
    p.add_argument("--memory-limit-mb", type=_positive, default=0.0, help="die like an OOM kill above")
    p.add_argument("--sawtooth-mb", type=_positive, default=0.0, help="allocate, then free, in cycles")
    p.add_argument("--sawtooth-period-s", type=_positive, default=30.0)
    p.add_argument("--scratch-dir", metavar="DIR")
    p.add_argument("--fill-mb-per-s", type=_positive, default=0.0)
    p.add_argument("--scratch-cap-mb", type=_positive, default=64.0)
    p.add_argument("--heartbeat-udp", type=_hostport, metavar="HOST:PORT")
    p.add_argument("--heartbeat-interval-s", type=_positive, default=0.1)
    p.add_argument("--error-ratio", type=_ratio, default=0.0, help="share of GET / answered 500 (a bad variant)")
    p.add_argument("--delay-ms", type=_positive, default=0.0, help="mean added latency of GET / (±25 %% jitter)")
    p.add_argument("--bind-retry-s", type=_positive, default=2.0, help="wait for a busy port this long")
    opts = p.parse_args(argv)
    if opts.fill_mb_per_s and not opts.scratch_dir:
        p.error("--fill-mb-per-s needs --scratch-dir")
    if opts.heartbeat_udp and opts.heartbeat_interval_s <= 0:
        p.error("--heartbeat-interval-s must be > 0")
    if opts.sawtooth_mb and opts.sawtooth_period_s <= 0:
        p.error("--sawtooth-period-s must be > 0")
    return opts


class Service:
    """The request handlers and the state they share; one instance per process."""

    def __init__(self, opts: argparse.Namespace) -> None:
        self.opts = opts
        self.chaos = ChaosState()
        self.metrics = Metrics(opts.name)
        self.stop = threading.Event()
        self.leaked: list[bytearray] = []
        self.scratch = Scratch(opts.scratch_dir, int(opts.scratch_cap_mb * _MB)) if opts.scratch_dir else None
        self._active = 0  # open connections
        self._inflight = 0  # requests being answered
        self._active_lock = threading.Lock()

    # --- lifecycle -------------------------------------------------------------------
    def start_workers(self) -> None:
        """Start the leak, fill and heartbeat threads that the options ask for."""
        o = self.opts
        if o.leak_mb_per_s > 0:
            start_leaker(self.stop, o.leak_mb_per_s, int(o.memory_limit_mb * _MB), self.leaked)
        if o.sawtooth_mb > 0:
            start_sawtooth(self.stop, o.sawtooth_mb, o.sawtooth_period_s)
        if self.scratch is not None:
            self.scratch.measure()
            if o.fill_mb_per_s > 0:
                start_filler(self.stop, self.scratch, o.fill_mb_per_s)
        if o.heartbeat_udp:
            host, port = o.heartbeat_udp
            start_heartbeat(self.stop, o.name, host, port, o.heartbeat_interval_s)

    def serve(self, listener: socket.socket) -> None:
        """Accept connections forever (until a signal raises :class:`_Stop`)."""
        while True:
            try:
                conn, _ = listener.accept()
            except OSError as exc:  # out of descriptors or similar: back off, keep serving
                sys.stderr.write(f"{self.opts.name}: accept failed: {exc}\n")
                time.sleep(0.05)
                continue
            try:
                threading.Thread(target=self._connection, args=(conn,), daemon=True).start()
            except RuntimeError:  # no more threads: shed this connection, not the service
                conn.close()

    def drain(self) -> None:
        """Give in-flight answers (not idle keep-alive connections) a moment to finish."""
        deadline = time.monotonic() + _DRAIN_S
        while self._inflight and time.monotonic() < deadline:
            time.sleep(0.005)

    # --- HTTP/1.1 --------------------------------------------------------------------
    def _connection(self, conn: socket.socket) -> None:
        with self._active_lock:
            self._active += 1
            crowded = self._active > _MAX_CONNECTIONS
        try:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn.settimeout(_IDLE_TIMEOUT_S)
            if crowded:
                conn.sendall(response(503, "text/plain", b"too many connections\n", close=True))
                return
            rfile = conn.makefile("rb")
            while self._one_request(conn, rfile):
                pass
        except OSError:
            pass  # the client went away or idled out; nothing to answer
        finally:
            with self._active_lock:
                self._active -= 1
            conn.close()

    def _one_request(self, conn: socket.socket, rfile: BufferedReader) -> bool:
        """Read, answer and time one request; False when the connection should close."""
        readline = rfile.readline
        line = readline(8193)
        if not line:
            return False
        t0 = time.perf_counter()
        parts = line.decode("latin-1").split()
        headers = read_headers(readline)
        if headers is None:
            conn.sendall(response(431, "text/plain", b"too many headers\n", close=True))
            return False
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            conn.sendall(response(400, "text/plain", b"malformed request line\n", close=True))
            return False
        method, target, version = parts
        path = target.split("?", 1)[0]
        keep = headers.get("connection", "").lower() != "close" and version == "HTTP/1.1"
        length_text = headers.get("content-length", "0") or "0"
        if not (length_text.isascii() and length_text.isdigit()):
            conn.sendall(response(400, "text/plain", b"bad Content-Length\n", close=True))
            return False
        length = int(length_text)
        if length > _MAX_BODY:
            conn.sendall(response(413, "text/plain", b"body too large\n", close=True))
            return False
        body = rfile.read(length) if length else b""
        with self._active_lock:
            self._inflight += 1
        try:
            code, ctype, payload = self.dispatch(method, path, body)
        except Exception as exc:  # a bug must cost one answer, not the connection's thread
            code, ctype, payload = 500, "text/plain", f"internal error: {exc!r}\n".encode()
        try:
            conn.sendall(response(code, ctype, b"" if method == "HEAD" else payload, close=not keep))
        finally:
            with self._active_lock:
                self._inflight -= 1
        self.metrics.observe(path, code, time.perf_counter() - t0)
        return keep

    def dispatch(self, method: str, path: str, body: bytes) -> _Reply:
        """Route one request to its handler."""
        if path == "/chaos" and method == "POST":
            return self._post_chaos(body)
        if method not in ("GET", "HEAD"):
            return 405, "text/plain", b"GET only (and POST /chaos)\n"
        handler = {
            "/health": self._health,
            "/metrics": self._metrics,
            "/": self._root,
            "/chaos": self._get_chaos,
        }.get(path)
        return handler() if handler else (404, "text/plain", b"not found\n")

    # --- handlers ----------------------------------------------------------------------
    def _delay(self) -> str:
        """Apply slow/creep latency; return the chaos mode in force."""
        mode, delay = self.chaos.current()
        if delay > 0:
            time.sleep(delay)
        return mode

    def _health(self) -> _Reply:
        mode = self._delay()
        if mode == "error":
            return 503, "text/plain", b"error (chaos)\n"
        bad = self.opts.fail_start_file
        if bad and os.path.exists(bad):  # noqa: PTH110  (pathlib costs start-up time)
            return 503, "text/plain", f"bad config: {bad} exists\n".encode()
        if self.scratch is not None and self.scratch.full:
            return 503, "text/plain", b"scratch directory full\n"
        return 200, "text/plain", b"ok\n"

    def _get_chaos(self) -> _Reply:
        return _json(200, self.chaos.describe())

    def _metrics(self) -> _Reply:
        leaked = sum(map(len, self.leaked))
        text = self.metrics.render(self.scratch, leaked, int(self.opts.memory_limit_mb * _MB))
        return 200, "text/plain; version=0.0.4; charset=utf-8", text.encode()

    def _root(self) -> _Reply:
        if self._delay() == "error":
            return 500, "text/plain", b"error (chaos)\n"
        if self.opts.delay_ms > 0:
            time.sleep(self.opts.delay_ms / 1000.0 * random.uniform(0.75, 1.25))
        if self.opts.error_ratio > 0 and random.random() < self.opts.error_ratio:
            return 500, "text/plain", b"error (error ratio)\n"
        work = sum(i * i for i in range(2000))  # a little CPU per request, like real work
        upstreams: dict[str, int] = {}
        for host, port, prefix in self.opts.upstream:
            status = get_status(host, port, prefix + "/health")
            upstreams[f"{host}:{port}"] = status
            if status != 200:
                self.metrics.upstream_failed()
        ok = all(s == 200 for s in upstreams.values())
        return _json(200 if ok else 502, {"service": self.opts.name, "work": work, "upstreams": upstreams})

    def _post_chaos(self, body: bytes) -> _Reply:
        try:
            req = json.loads(body or b"{}")
            mode = req.get("mode")
            duration = float(req.get("duration_s", 5.0))
            delay = float(req.get("delay_s", 0.5))
        except (ValueError, TypeError, AttributeError) as exc:
            return _json(400, {"error": f"body must be a JSON object: {exc}"})
        if mode not in CHAOS_MODES:
            return _json(400, {"error": f"mode: must be one of {', '.join(CHAOS_MODES)}"})
        if not 0 <= duration <= 86_400 or not 0 <= delay <= 600:
            return _json(400, {"error": "duration_s must be in [0, 86400] and delay_s in [0, 600]"})
        generation = self.chaos.set(mode, duration, delay)
        if mode == "spin":
            start_spin(self.chaos, generation)
        return _json(200, self.chaos.describe())


def _json(code: int, obj: object) -> _Reply:
    return code, "application/json", json.dumps(obj).encode()


def _bind(host: str, port: int, retry_s: float) -> socket.socket:
    """Listen on ``host:port``, retrying while a just-killed predecessor releases it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    deadline = time.monotonic() + retry_s
    while True:
        sock = socket.socket(family, socket.SOCK_STREAM)
        # SO_REUSEADDR (not REUSEPORT): reuse a port in TIME_WAIT after a crash, but never
        # share it with a live, perhaps hung, predecessor.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            sock.close()
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.02)
            continue
        sock.listen(256)
        return sock


def _raise_stop(signum: int, frame: object) -> None:
    raise _Stop


def main(argv: Sequence[str] | None = None) -> int:
    """Run the service until SIGTERM/SIGINT; exit 1 at once on a bad config."""
    opts = parse_args(argv)
    if opts.fail_start_file and os.path.exists(opts.fail_start_file):  # noqa: PTH110
        sys.stderr.write(f"{opts.name}: bad config: {opts.fail_start_file} exists; refusing to start\n")
        return 1
    try:
        listener = _bind(opts.host, opts.port, opts.bind_retry_s)
    except OSError as exc:
        sys.stderr.write(f"{opts.name}: cannot listen on {opts.host}:{opts.port}: {exc.strerror}\n")
        return 1
    service = Service(opts)
    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGINT, _raise_stop)
    service.start_workers()
    try:
        service.serve(listener)
    except _Stop:
        pass
    finally:
        listener.close()
        service.stop.set()
    service.drain()
    return 0


if __name__ == "__main__":
    sys.exit(main())
