"""The controller's long-lived heap, kept out of Python's cyclic garbage collector.

A controller running a thousand targets holds a few hundred thousand objects that live
as long as it does (specs, probe loops, health windows, leases). CPython's collector
walks all of them on every full (generation 2) collection, with the event loop stopped:
measured with ``gc.callbacks`` at 1,000 remote targets, a full collection paused the loop
for 100–800 ms on a shared two-core machine, more than every other stall put together,
and a loop that pauses that long makes every probe in flight late.

:meth:`Heap.settle` moves everything alive into the permanent generation
(``gc.freeze()``) once the objects have been built: after start-up, and shortly after
targets arrive with shard leases taken over from another node. Until then the collector
is held (:meth:`Heap.settle_soon`): a take-over of a thousand targets builds some hundred
thousand objects in one go, and a full collection started halfway walks them all (one of
744 ms measured). The young generations are collected first, so only what is still alive
is frozen. Frozen objects are still freed by reference
counting when dropped; only a reference cycle that was alive when frozen and dies later
(a target handed back to another node) stays in memory until the process ends.

``novacron_gc_pause_seconds`` records each collection's pause by generation, so the
effect is visible on ``/metrics``.
"""

from __future__ import annotations

import asyncio
import gc
import time
from typing import Any

from prometheus_client import Histogram

from novacron.telemetry import Metrics

__all__ = ["Heap"]

_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
_SETTLE_AFTER_S = 1.0  # a take-over configures its targets in bursts within this of each other


class Heap:
    """Freezes the long-lived heap and measures the collector's pauses (one per process)."""

    def __init__(self, metrics: Metrics, *, settle_after_s: float = _SETTLE_AFTER_S) -> None:
        self.pauses = Histogram(
            "novacron_gc_pause_seconds",
            "How long each cyclic garbage collection stopped the controller, by generation.",
            ["generation"],
            buckets=_BUCKETS,
            registry=metrics.registry,
        )
        self.settle_after_s = settle_after_s
        self.settled = 0  # times the heap was frozen
        self._started = 0.0
        self._pending: asyncio.TimerHandle | None = None
        self._holding = False  # the collector was on and is held off until the next settle

    def watch(self) -> None:
        """Start timing every collection."""
        if self._on_gc not in gc.callbacks:
            gc.callbacks.append(self._on_gc)

    def close(self) -> None:
        """Stop timing, drop a pending settle and give the collector back."""
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
        self._release()

    def settle(self) -> None:
        """Collect the young generations, freeze everything still alive, and let the collector run."""
        self._pending = None
        gc.collect(1)
        gc.freeze()
        self.settled += 1
        self._release()

    def settle_soon(self) -> None:
        """Hold the collector and settle ``settle_after_s`` from now (calls meanwhile join that settle).

        Not postponed by later calls, so the collector is never held longer than that.
        """
        if self._pending is not None:
            return
        if gc.isenabled():
            gc.disable()
            self._holding = True
        self._pending = asyncio.get_running_loop().call_later(self.settle_after_s, self.settle)

    def _release(self) -> None:
        if self._holding:
            self._holding = False
            gc.enable()

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.pauses.labels(generation=str(info["generation"])).observe(time.perf_counter() - self._started)
