"""How long the controller's own event loop was blocked, so probes do not blame targets for it.

A probe's latency is measured on the event loop: when the loop is blocked (a synchronous
store write under load, a module imported on first use, a busy machine not scheduling the
controller), every probe in flight seems slow, and every deadline that falls in the block
seems to find a silent target, although the targets answered. :class:`LoopLag` senses
such blocks with a timer every ``period_s``: how late the timer fires, beyond a
``tolerance_s`` of ordinary jitter, is time the loop could not listen. The prober
subtracts it from the latencies it learns and from its deadlines.

The lateness is recorded by the first loop iteration after the block, before any task
woken in that iteration resumes (timers run in the iteration that finds them due; tasks
they wake run in the next), so a probe that finishes right after a block already sees it.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

__all__ = ["LoopLag", "StallMeter"]


class StallMeter(Protocol):
    """A running total of the time the event loop could not listen, in seconds."""

    def stalled(self) -> float:
        """Seconds of blocked loop so far (only ever grows)."""
        ...


class LoopLag:
    """Total time the running event loop was blocked, sensed by a periodic timer."""

    def __init__(self, *, period_s: float = 0.01, tolerance_s: float = 0.002) -> None:
        self.period_s = period_s
        self.tolerance_s = tolerance_s
        self._stalled = 0.0
        self._due = 0.0
        self._handle: asyncio.TimerHandle | None = None

    def start(self) -> None:
        """Start sensing on the running loop (no-op when already started)."""
        if self._handle is not None:
            return
        loop = asyncio.get_running_loop()
        self._due = loop.time() + self.period_s
        self._handle = loop.call_at(self._due, self._tick, loop)

    def stop(self) -> None:
        """Stop the timer."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def stalled(self) -> float:
        """Seconds the loop was blocked since :meth:`start`."""
        return self._stalled

    def _tick(self, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        late = now - self._due - self.tolerance_s
        if late > 0.0:
            self._stalled += late
        self._due = now + self.period_s
        self._handle = loop.call_at(self._due, self._tick, loop)
