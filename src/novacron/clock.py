"""Time, injected: every piece of logic asks a :class:`Clock`, never ``time.time()`` inline.

``now()`` is wall-clock seconds since the epoch (for records), ``monotonic()`` is for
measuring durations, ``sleep()`` waits. Tests use :class:`FakeClock`; the digital twin
provides a simulated clock with the same protocol.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "FakeClock", "MonotonicClock"]


@runtime_checkable
class Clock(Protocol):
    """Where all logic gets its time."""

    def now(self) -> float:
        """Wall-clock time in seconds since the epoch."""
        ...

    def monotonic(self) -> float:
        """A clock that never goes backwards, for durations."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time."""
        ...


class MonotonicClock:
    """The real clock of the running process."""

    def now(self) -> float:
        """Wall-clock seconds since the epoch."""
        return time.time()

    def monotonic(self) -> float:
        """Monotonic seconds (``time.monotonic``)."""
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        """Sleep on the event loop."""
        await asyncio.sleep(max(0.0, seconds))


class FakeClock:
    """A clock that only moves when told to; sleepers wake in order as time passes.

    ``now()`` and ``monotonic()`` share one counter, starting at ``start``.
    """

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._t = start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def now(self) -> float:
        """The fake wall-clock time."""
        return self._t

    def monotonic(self) -> float:
        """The same counter as :meth:`now`."""
        return self._t

    async def sleep(self, seconds: float) -> None:
        """Suspend until :meth:`advance` moves time past the deadline."""
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._t + seconds, next(self._seq), fut))
        await fut

    def advance(self, seconds: float) -> None:
        """Move time forward and wake every sleeper whose deadline has passed."""
        if seconds < 0:
            raise ValueError("a clock cannot go backwards")
        self._t += seconds
        while self._sleepers and self._sleepers[0][0] <= self._t:
            _, _, fut = heapq.heappop(self._sleepers)
            if not fut.done():
                fut.set_result(None)

    async def run_for(self, seconds: float, step: float = 0.01) -> None:
        """Advance in ``step`` increments, yielding to the loop so woken tasks run."""
        end = self._t + seconds
        while self._t < end:
            self.advance(min(step, end - self._t))
            for _ in range(5):
                await asyncio.sleep(0)
