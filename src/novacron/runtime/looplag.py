"""The controller's own event-loop lag: how late a 50 ms ticker wakes, as a Prometheus histogram.

Everything the controller does shares one loop, so its lateness is the delay every probe,
detection and action suffers. ``novacron_loop_lag_seconds`` is what `novacron bench ha`
reads from each controller to check the loop stays responsive under load.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from prometheus_client import Histogram

from novacron.telemetry import Metrics

__all__ = ["LoopLag"]

_TICK_S = 0.05
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


class LoopLag:
    """Measures the loop's lateness while started."""

    def __init__(self, metrics: Metrics) -> None:
        self.histogram = Histogram(
            "novacron_loop_lag_seconds",
            "How late a 50 ms ticker wakes on the controller's loop.",
            buckets=_BUCKETS,
            registry=metrics.registry,
        )
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Tick on the running loop until stopped."""
        self._task = asyncio.get_running_loop().create_task(self._run(), name="loop-lag")

    async def stop(self) -> None:
        """Stop ticking."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        # The real clock on purpose: the lag of the process's own loop, whatever clock the logic uses.
        while True:
            due = time.monotonic() + _TICK_S
            await asyncio.sleep(_TICK_S)
            self.histogram.observe(max(0.0, time.monotonic() - due))
