"""State and background workers of a demo service: chaos modes, metrics, leak, fill, heartbeat.

Kept to the standard library and free of other ``novacron`` imports, because a demo
service is restarted by the healing benchmark and every millisecond of interpreter start
counts towards MTTR.
"""

from __future__ import annotations

import os
import resource
import socket
import sys
import threading
import time

# Spelled out instead of ``from typing import TYPE_CHECKING``: typing, dataclasses and
# pathlib together cost ~35 ms of start-up, a tenth of the restart budget.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "CHAOS_MODES",
    "ChaosState",
    "Metrics",
    "Scratch",
    "resident_bytes",
    "start_filler",
    "start_heartbeat",
    "start_leaker",
    "start_sawtooth",
    "start_spin",
]

CHAOS_MODES = ("normal", "slow", "error", "creep", "spin")
_MB = 1024 * 1024
_TICK_S = 0.1  # leak and fill work in small steps so growth looks linear to a sampler
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
# Latency buckets sized around the probes' 0.25 s timeout, so a creep shows up as mass
# moving between buckets well before probes start to fail.
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_PATHS = ("/", "/health", "/metrics", "/chaos")


def resident_bytes() -> int:
    """Current resident set size of this process (Linux ``/proc``; peak RSS elsewhere)."""
    try:
        with open("/proc/self/statm", "rb") as fh:  # noqa: PTH123  (pathlib costs start-up time)
            return int(fh.read().split()[1]) * _PAGE
    except OSError:
        # Off Linux /proc is missing; peak RSS is the closest portable figure.
        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


class ChaosState:
    """The chaos mode in force; modes other than ``normal`` expire after their duration."""

    def __init__(self) -> None:
        self.mode = "normal"
        self.delay_s = 0.0
        self.started = 0.0
        self.until = 0.0
        self.generation = 0
        self.lock = threading.Lock()

    def set(self, mode: str, duration_s: float, delay_s: float) -> int:
        """Enter ``mode`` for ``duration_s`` seconds; returns the new generation number."""
        now = time.monotonic()
        with self.lock:
            self.generation += 1
            self.mode, self.delay_s = mode, delay_s
            self.started, self.until = now, now + duration_s
            return self.generation

    def current(self) -> tuple[str, float]:
        """The active mode and the response delay it imposes right now."""
        now = time.monotonic()
        with self.lock:
            if self.mode == "normal" or now >= self.until:
                return "normal", 0.0
            if self.mode == "slow":
                return "slow", self.delay_s
            if self.mode == "creep":
                span = max(self.until - self.started, 1e-9)
                return "creep", self.delay_s * (now - self.started) / span
            return self.mode, 0.0

    def active(self, generation: int) -> bool:
        """Whether the chaos episode numbered ``generation`` is still the one in force."""
        with self.lock:
            return self.generation == generation and time.monotonic() < self.until

    def describe(self) -> dict[str, object]:
        """A JSON-able view for ``GET /chaos``."""
        mode, delay = self.current()
        remaining = max(0.0, self.until - time.monotonic()) if mode != "normal" else 0.0
        return {"mode": mode, "delay_s": round(delay, 4), "remaining_s": round(remaining, 3)}


class Metrics:
    """Counters and a latency histogram, rendered in the Prometheus text format."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.started_at = time.time()
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, int], int] = {}
        self._errors: dict[str, int] = {}
        self._upstream_errors = 0
        self._buckets = [0] * len(_BUCKETS)
        self._count = 0
        self._sum = 0.0

    def observe(self, path: str, code: int, seconds: float) -> None:
        """Count one answered request; scrapes of /metrics stay out of the histogram."""
        path = path if path in _PATHS else "other"
        with self._lock:
            self._requests[path, code] = self._requests.get((path, code), 0) + 1
            if code >= 500:
                self._errors[path] = self._errors.get(path, 0) + 1
            if path != "/metrics":
                self._count += 1
                self._sum += seconds
                for i, bound in enumerate(_BUCKETS):
                    if seconds <= bound:
                        self._buckets[i] += 1

    def upstream_failed(self) -> None:
        """Count one failed call to an upstream's /health."""
        with self._lock:
            self._upstream_errors += 1

    def render(self, scratch: Scratch | None, leaked: int, memory_limit: int) -> str:
        """The exposition text for ``GET /metrics``."""
        with self._lock:
            lines = self._http_lines()
        cpu = os.times()
        gauges: list[tuple[str, str, str, float]] = [
            ("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", resident_bytes()),
            ("process_cpu_seconds_total", "counter", "User and system CPU time.", cpu.user + cpu.system),
            ("process_start_time_seconds", "gauge", "Start time since the epoch.", self.started_at),
            ("demo_leaked_bytes", "gauge", "Bytes held by the simulated leak.", leaked),
        ]
        if memory_limit:
            gauges.append(("memory_limit_bytes", "gauge", "Memory limit of the service.", memory_limit))
        if scratch is not None:
            gauges.append(("scratch_used_bytes", "gauge", "Bytes in the scratch dir.", scratch.used))
            gauges.append(("scratch_limit_bytes", "gauge", "Scratch dir capacity.", scratch.cap))
        for name, kind, doc, value in gauges:
            lines += [f"# HELP {name} {doc}", f"# TYPE {name} {kind}", f"{name} {_num(value)}"]
        return "\n".join(lines) + "\n"

    def _http_lines(self) -> list[str]:
        lines = ["# HELP http_requests_total HTTP requests answered.", "# TYPE http_requests_total counter"]
        for (path, code), n in sorted(self._requests.items()):
            lines.append(f'http_requests_total{{path="{path}",code="{code}"}} {n}')
        lines += ["# HELP http_errors_total HTTP 5xx answers.", "# TYPE http_errors_total counter"]
        for path, n in sorted(self._errors.items()):
            lines.append(f'http_errors_total{{path="{path}"}} {n}')
        lines += [
            "# HELP upstream_errors_total Failed calls to upstream services.",
            "# TYPE upstream_errors_total counter",
            f"upstream_errors_total {self._upstream_errors}",
            "# HELP http_request_duration_seconds Request latency (scrapes excluded).",
            "# TYPE http_request_duration_seconds histogram",
        ]
        for bound, n in zip(_BUCKETS, self._buckets, strict=True):
            lines.append(f'http_request_duration_seconds_bucket{{le="{bound}"}} {n}')
        lines.append(f'http_request_duration_seconds_bucket{{le="+Inf"}} {self._count}')
        lines.append(f"http_request_duration_seconds_sum {_num(self._sum)}")
        lines.append(f"http_request_duration_seconds_count {self._count}")
        return lines


def _num(value: float) -> str:
    return repr(float(value)) if isinstance(value, float) else str(value)


class Scratch:
    """A scratch directory that a writer fills up to a cap (a disk that runs full)."""

    def __init__(self, directory: str, cap_bytes: int) -> None:
        self.dir = directory
        self.cap = cap_bytes
        self.used = 0
        self.full = False
        self._seq = 0

    def measure(self) -> int:
        """Re-read usage from the directory, so a clean-up from outside is noticed."""
        total = 0
        try:
            with os.scandir(self.dir) as it:
                for entry in it:
                    if entry.is_file(follow_symlinks=False):
                        total += entry.stat(follow_symlinks=False).st_size
        except FileNotFoundError:
            os.makedirs(self.dir, exist_ok=True)  # noqa: PTH103  (pathlib costs start-up time)
        self.used = total
        return total

    def write(self, nbytes: int) -> None:
        """Append ``nbytes`` of real data, or mark the scratch full if the cap is reached."""
        if self.measure() + nbytes > self.cap:
            self.full = True
            return
        self.full = False
        # A new file every ~8 MB; open/append/close each time so that a file deleted by a
        # clean-up is never kept alive (and counted nowhere) by an open descriptor.
        path = self._path()
        if os.path.exists(path) and os.path.getsize(path) >= 8 * _MB:  # noqa: PTH110, PTH202
            self._seq += 1
            path = self._path()
        with open(path, "ab") as fh:  # noqa: PTH123
            fh.write(b"\x5a" * nbytes)
        self.used += nbytes

    def _path(self) -> str:
        return os.path.join(self.dir, f"scratch-{self._seq:06d}.bin")  # noqa: PTH118


def _loop(stop: threading.Event, interval: float, step: Callable[[], None]) -> None:
    deadline = time.monotonic()
    while not stop.is_set():
        step()
        deadline += interval
        # Sleep to the schedule, not for a fixed interval, so rates stay accurate.
        stop.wait(max(0.0, deadline - time.monotonic()))


def _every(stop: threading.Event, interval: float, step: Callable[[], None]) -> None:
    threading.Thread(target=_loop, args=(stop, interval, step), daemon=True).start()


def start_leaker(stop: threading.Event, mb_per_s: float, limit_bytes: int, hold: list[bytearray]) -> None:
    """Allocate and keep ``mb_per_s`` MB/s; past ``limit_bytes`` of RSS die like an OOM kill."""
    chunk = max(1, int(mb_per_s * _MB * _TICK_S))

    def step() -> None:
        # A written (not merely reserved) buffer, so the pages really count towards RSS.
        hold.append(bytearray(b"\xa5") * chunk)
        if limit_bytes and resident_bytes() > limit_bytes:
            sys.stderr.write(f"out of memory: resident set above the {limit_bytes} byte limit\n")
            sys.stderr.flush()
            os.kill(os.getpid(), 9)  # what the kernel's OOM killer would do

    _every(stop, _TICK_S, step)


def start_sawtooth(stop: threading.Event, peak_mb: float, period_s: float) -> None:
    """Grow memory linearly to ``peak_mb`` over ``period_s``, free it all, repeat (a GC cycle).

    Pieces are 256 KiB, above glibc's mmap threshold, so freeing them really lowers RSS.
    """
    piece = 256 * 1024
    pieces = max(1, int(peak_mb * _MB / piece))
    held: list[bytearray] = []

    def step() -> None:
        if len(held) >= pieces:
            held.clear()
        else:
            held.append(bytearray(b"\x3c") * piece)

    _every(stop, period_s / pieces, step)


def start_filler(stop: threading.Event, scratch: Scratch, mb_per_s: float) -> None:
    """Write ``mb_per_s`` MB/s into the scratch directory until its cap."""
    chunk = max(1, int(mb_per_s * _MB * _TICK_S))

    def step() -> None:
        try:
            scratch.write(chunk)
        except OSError as exc:  # a real full disk behaves like the cap
            scratch.full = True
            sys.stderr.write(f"scratch write failed: {exc}\n")

    _every(stop, _TICK_S, step)


def start_heartbeat(stop: threading.Event, name: str, host: str, port: int, interval_s: float) -> None:
    """Send the datagram ``name`` to ``host:port`` every ``interval_s`` seconds."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
    payload = name.encode("utf-8")

    def step() -> None:
        try:  # noqa: SIM105  (contextlib would be one more import at start-up)
            sock.sendto(payload, (host, port))
        except OSError:
            pass  # nobody listening yet (ICMP refusal): heartbeats are fire-and-forget

    _every(stop, interval_s, step)


def start_spin(chaos: ChaosState, generation: int) -> None:
    """Burn CPU in a thread while the spin episode ``generation`` lasts."""

    def spin() -> None:
        x = 0
        while chaos.active(generation):
            for i in range(20_000):
                x ^= i * i

    threading.Thread(target=spin, daemon=True).start()
