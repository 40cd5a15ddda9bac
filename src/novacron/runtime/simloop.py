"""An asyncio event loop whose time is the twin's simulated time.

Controller code waits in three ways: on its injected :class:`~novacron.clock.Clock`
(``clock.sleep``), on loop timers (``asyncio.sleep``, ``asyncio.timeout``, ``call_later`` —
the probe scheduler, the health tracker's verification deadline, stop grace periods), and
on events set by other tasks. Under :class:`SimEventLoop` all three are simulated: the
loop's ``time()`` is the simulation's clock, and when the loop has nothing ready to run,
instead of blocking until the next timer it advances the twin straight to the earliest of
the next loop timer and the next :class:`~novacron.twin.SimClock` sleeper, then wakes
whoever is due. Nothing in the controller changes; an hour of healing takes as long as
the work done in it, not an hour. Real file descriptors (a thread pool's wake-up pipe)
are still polled, without blocking, before time moves.
"""

from __future__ import annotations

import asyncio
import math
import selectors
from collections.abc import Coroutine, Mapping
from typing import Any, TypeVar

from novacron.twin.clock import SimClock

__all__ = ["SimEventLoop", "run_simulated"]

T = TypeVar("T")

# With nothing scheduled anywhere, poll real descriptors this long (a worker thread may
# still deliver a result) instead of blocking forever.
_IDLE_POLL_S = 0.05
_MIN_MOVE_S = 1e-6


class _Driver:
    """Moves simulated time forward when the loop would otherwise block."""

    def __init__(self, clock: SimClock) -> None:
        self.clock = clock
        self.now = clock.sim.now
        self.advances = 0

    def advance(self, timeout: float | None) -> bool:
        """Advance to the earliest of now+timeout and the next clock sleeper; False if neither exists."""
        target = math.inf if timeout is None else self.now + timeout
        deadline = self.clock.next_deadline()
        if deadline is not None:
            target = min(target, max(deadline, self.now))
        if math.isinf(target):
            return False
        if target > self.clock.sim.now:
            # The simulator ignores moves shorter than its epsilon; a timer that close (e.g. a
            # timeout for the last nanoseconds of a deadline read from the sim's clock) would
            # then fire again and again with simulated time standing still. Move at least a
            # microsecond, and let the loop's time follow the simulation's.
            self.clock.sim.advance_to(max(target, self.clock.sim.now + _MIN_MOVE_S))
            self.advances += 1
        self.now = max(self.now, target, self.clock.sim.now)
        self.clock.wake_due()
        return True


class _SimSelector(selectors.BaseSelector):
    """A selector that polls real descriptors and otherwise advances simulated time."""

    def __init__(self, driver: _Driver) -> None:
        self._inner = selectors.DefaultSelector()
        self._driver = driver

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        """Register a real descriptor."""
        return self._inner.register(fileobj, events, data)

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        """Unregister a real descriptor."""
        return self._inner.unregister(fileobj)

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        """Change what a real descriptor is watched for."""
        return self._inner.modify(fileobj, events, data)

    def get_map(self) -> Mapping[Any, selectors.SelectorKey]:
        """The registered descriptors."""
        return self._inner.get_map()

    def close(self) -> None:
        """Close the real selector."""
        self._inner.close()

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        """Ready descriptors now; if none and the loop would wait, move simulated time instead."""
        ready = self._inner.select(0)
        if ready:
            return ready
        if timeout is not None and timeout <= 0:
            self._driver.clock.wake_due()
            return []
        if self._driver.advance(timeout):
            return []
        return self._inner.select(_IDLE_POLL_S)


class SimEventLoop(asyncio.SelectorEventLoop):
    """A selector event loop on the twin's clock (see the module docstring)."""

    def __init__(self, clock: SimClock) -> None:
        self._driver = _Driver(clock)
        super().__init__(selector=_SimSelector(self._driver))

    def time(self) -> float:
        """Simulated seconds (the same scale as ``SimClock.monotonic``)."""
        return self._driver.now

    @property
    def advances(self) -> int:
        """How many times the loop moved simulated time (a measure of event density)."""
        return self._driver.advances


def run_simulated(main: Coroutine[Any, Any, T], clock: SimClock) -> T:
    """Run ``main`` to completion on a fresh :class:`SimEventLoop` (in this thread).

    Call it from synchronous code (a CLI command, a plain test): like ``asyncio.run`` it
    cannot run inside another running loop.
    """
    loop = SimEventLoop(clock)
    try:
        return loop.run_until_complete(main)
    finally:
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()
