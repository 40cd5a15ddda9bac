"""A :class:`~novacron.clock.Clock` whose time is the simulator's.

``sleep`` parks the caller until simulated time reaches its deadline. Nothing moves on its
own: :meth:`SimClock.run` drives the simulation cooperatively, advancing straight to the
earliest sleeper's deadline (or the horizon), waking it, and letting woken tasks run before
advancing again — so controller code written against the Clock protocol runs unchanged,
as fast as the simulation allows.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Awaitable

from novacron.errors import InputError
from novacron.twin.sim import Simulator

__all__ = ["SimClock"]

_SETTLE_ROUNDS = 8  # loop turns given to woken tasks so they can sleep again before we advance


class SimClock:
    """Simulated time for code that takes a Clock. ``now()`` = ``epoch`` + simulated seconds."""

    def __init__(self, sim: Simulator, *, epoch: float = 1_700_000_000.0) -> None:
        self.sim = sim
        self.epoch = epoch
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def now(self) -> float:
        """Simulated wall-clock time (epoch seconds)."""
        return self.epoch + self.sim.now

    def monotonic(self) -> float:
        """Simulated seconds since the simulation began."""
        return self.sim.now

    async def sleep(self, seconds: float) -> None:
        """Wait until simulated time has moved ``seconds`` forward."""
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.sim.now + seconds, next(self._seq), fut))
        await fut

    def next_deadline(self) -> float | None:
        """The earliest sleeper's wake-up time, if anyone sleeps."""
        while self._sleepers and self._sleepers[0][2].done():
            heapq.heappop(self._sleepers)  # cancelled sleepers
        return self._sleepers[0][0] if self._sleepers else None

    def wake_due(self) -> None:
        """Wake every sleeper whose deadline simulated time has reached (for external drivers)."""
        self._wake_due()

    def _wake_due(self) -> None:
        now = self.sim.now + 1e-9
        while self._sleepers and self._sleepers[0][0] <= now:
            _, _, fut = heapq.heappop(self._sleepers)
            if not fut.done():
                fut.set_result(None)

    async def _settle(self) -> None:
        for _ in range(_SETTLE_ROUNDS):
            await asyncio.sleep(0)

    async def run(self, until: float) -> None:
        """Drive the simulation to simulated time ``until``, waking sleepers on the way."""
        if until < self.sim.now:
            raise InputError(f"cannot run back to {until} from {self.sim.now}", where="until")
        while True:
            await self._settle()
            deadline = self.next_deadline()
            target = until if deadline is None else min(deadline, until)
            self.sim.advance_to(target)
            self._wake_due()
            if self.sim.now >= until - 1e-9 and (deadline is None or deadline > until):
                break
        await self._settle()

    async def run_until_done(self, work: Awaitable[object], limit_s: float) -> object:
        """Run ``work`` under simulated time, advancing at most ``limit_s`` simulated seconds."""
        task = asyncio.ensure_future(work)
        end = self.sim.now + limit_s
        while not task.done() and self.sim.now < end - 1e-9:
            await self._settle()
            if task.done():
                break
            deadline = self.next_deadline()
            target = end if deadline is None else min(deadline, end)
            self.sim.advance_to(target)
            self._wake_due()
        await self._settle()
        if not task.done():
            task.cancel()
            raise InputError(f"work did not finish within {limit_s} simulated seconds", where="limit_s")
        return task.result()
