"""Pushed heartbeats: a UDP receiver plus a phi-accrual detector per source.

A source sends its name (``target`` or ``target#replica``) as a UDP datagram; the HTTP
API feeds :meth:`HeartbeatMonitor.beat` the same way. The first beat of a source reports
it healthy; a checker evaluates every source's suspicion level ``phi`` every few tens of
milliseconds and reports it unhealthy when it crosses its threshold (and healthy again at
its next beat).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass

from novacron.clock import Clock
from novacron.detectors.phi import PhiAccrual
from novacron.model import Observation, TargetId
from novacron.settings import HeartbeatCheck

__all__ = ["HeartbeatMonitor"]

Emit = Callable[[Observation], None]


@dataclass
class _Source:
    target: TargetId
    replica: int
    check: HeartbeatCheck
    detector: PhiAccrual
    healthy: bool = False  # what was last reported: the first beat reports healthy


def _detector(check: HeartbeatCheck) -> PhiAccrual:
    return PhiAccrual(
        threshold=check.phi_threshold,
        min_std_s=check.min_std_s,
        acceptable_pause_s=check.acceptable_pause_s,
        window=check.window,
        first_interval_s=check.expected_interval_s,
    )


class _Receiver(asyncio.DatagramProtocol):
    def __init__(self, monitor: HeartbeatMonitor) -> None:
        self.monitor = monitor

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        with contextlib.suppress(UnicodeDecodeError):
            self.monitor.beat(data.decode().strip())


class HeartbeatMonitor:
    """Receives heartbeats and reports sources whose phi crosses the threshold."""

    def __init__(self, clock: Clock, emit: Emit, *, check_interval_s: float = 0.05) -> None:
        self._clock = clock
        self._emit = emit
        self._check_interval_s = check_interval_s
        self._sources: dict[str, _Source] = {}
        self._transport: asyncio.DatagramTransport | None = None
        self._task: asyncio.Task[None] | None = None
        self.port = 0

    def register(self, target: TargetId, replica: int, check: HeartbeatCheck) -> None:
        """Expect heartbeats from ``target#replica`` (``target`` alone means replica 0)."""
        self._sources[f"{target}#{replica}"] = _Source(target, replica, check, _detector(check))

    def reset(self, target: str, replica: int) -> None:
        """A new process behind the source: forget the old rhythm; its first beat proves it."""
        src = self._sources.get(f"{target}#{replica}")
        if src is not None:
            src.detector, src.healthy = _detector(src.check), False

    def unregister(self, target: str, replica: int) -> None:
        """Stop expecting a source."""
        self._sources.pop(f"{target}#{replica}", None)

    def beat(self, name: str) -> bool:
        """Record a heartbeat from ``name``; False if the source is unknown."""
        src = self._sources.get(name if "#" in name else f"{name}#0")
        if src is None:
            return False
        src.detector.heartbeat(self._clock.monotonic())
        if not src.healthy:
            src.healthy = True
            self._emit(Observation(src.target, "heartbeat", self._clock.now(), True, replica=src.replica))
        return True

    def last_beat(self, target: str, replica: int = 0) -> float | None:
        """When (monotonic) the source's latest heartbeat arrived since it was registered or reset."""
        src = self._sources.get(f"{target}#{replica}")
        return None if src is None else src.detector.last_heartbeat

    def phi(self, target: str, replica: int = 0) -> float:
        """Current suspicion level of a source."""
        return self._sources[f"{target}#{replica}"].detector.phi(self._clock.monotonic())

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen for UDP heartbeats and start the checker; returns the bound port."""
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: _Receiver(self), local_addr=(host, port))
        self._transport = transport
        self.port = int(transport.get_extra_info("sockname")[1])
        self._task = loop.create_task(self._check_loop(), name="heartbeat-checker")
        return self.port

    async def close(self) -> None:
        """Stop listening and checking."""
        if self._transport is not None:
            self._transport.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def check_now(self) -> None:
        """Evaluate every source once (the checker loop calls this)."""
        now = self._clock.monotonic()
        for src in self._sources.values():
            det = src.detector
            if det.last_heartbeat is None or not src.healthy:
                continue
            phi = det.phi(now)
            if phi >= det.threshold:
                src.healthy = False
                detail = f"phi {phi:.1f} >= {det.threshold:g}; last beat {now - det.last_heartbeat:.2f}s ago"
                self._emit(
                    Observation(src.target, "heartbeat", self._clock.now(), False, detail=detail, replica=src.replica)
                )

    async def _check_loop(self) -> None:
        while True:
            self.check_now()
            await self._clock.sleep(self._check_interval_s)
