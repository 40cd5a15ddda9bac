"""Active health probes (http, tcp, exec) on one event loop, one lightweight task per check.

Each loop probes, reports an :class:`~novacron.model.Observation`, then sleeps to the next
tick of its own schedule (ticks are skipped, never bunched, when a probe overruns).
After a restart the controller *expedites* a replica's checks so recovery is confirmed
within tens of milliseconds instead of a full interval.

With an adaptive timeout (:class:`~novacron.detectors.latency.AdaptiveTimeout`) a target
that has not answered within a few multiples of its own high-quantile response time is
*suspected*, and a second probe is sent beside the first, which stays open. The target is
failed only if neither answers within the silence span (twice its slowest healthy answer,
counted from the first probe, never longer than ``failures`` full timeouts), so a hung
process is found in a few latency quantiles while one slow answer, a lost request or a
latency shift never causes an action.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from novacron.clock import Clock
from novacron.detectors.latency import AdaptiveTimeout
from novacron.model import Observation, TargetId
from novacron.sensors.httpprobe import HttpProbeClient
from novacron.settings import ExecCheck, HttpCheck, TcpCheck

__all__ = ["EXPEDITED_INTERVAL_S", "ProbeFn", "Prober", "make_probe"]

ProbeFn = Callable[[float], Awaitable[tuple[bool, str]]]
Emit = Callable[[Observation], None]

# While a replica is being verified, probe it this often.
EXPEDITED_INTERVAL_S = 0.02


def make_probe(check: HttpCheck | TcpCheck | ExecCheck, fill: Callable[[str], str]) -> ProbeFn:
    """Build the probe function for one check of one replica ({port} and the like expanded)."""
    if isinstance(check, HttpCheck):
        return _http_probe(HttpProbeClient(fill(check.url)), check.expect_status)
    if isinstance(check, TcpCheck):
        return _tcp_probe(fill(check.host), int(fill(str(check.port))))
    return _exec_probe([fill(a) for a in check.command])


def _http_probe(client: HttpProbeClient, expect: int) -> ProbeFn:
    async def probe(timeout: float) -> tuple[bool, str]:
        status = await client.get(timeout)
        return status == expect, f"HTTP {status}"

    return probe


def _tcp_probe(host: str, port: int) -> ProbeFn:
    async def probe(timeout: float) -> tuple[bool, str]:
        async with asyncio.timeout(timeout):
            _, writer = await asyncio.open_connection(host, port)
        writer.close()
        return True, "connected"

    return probe


def _exec_probe(argv: list[str]) -> ProbeFn:
    async def probe(timeout: float) -> tuple[bool, str]:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
        )
        try:
            async with asyncio.timeout(timeout):
                code = await proc.wait()
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise
        return code == 0, f"exit {code}"

    return probe


@dataclass
class _Loop:
    target: TargetId
    replica: int
    source: str
    probe: ProbeFn
    interval: float
    timeout: float
    task: asyncio.Task[None] | None = None
    expedite_until: float = 0.0
    waker: asyncio.Future[bool] | None = None
    model: AdaptiveTimeout | None = None
    confirming: bool = False
    failures: int = 2
    start_within: float | None = None

    @property
    def first_delay(self) -> float:
        """Until the first probe: the phase, squeezed into ``start_within`` when that is shorter."""
        if self.start_within is None or self.start_within >= self.interval:
            return self.phase
        return self.phase * max(0.0, self.start_within) / self.interval

    @property
    def phase(self) -> float:
        """Where in its interval this check probes: fixed per check, spread across checks.

        Thousands of checks started together would otherwise probe in one burst every
        interval (5,000 connects at once) and time each other out.
        """
        key = f"{self.target}#{self.replica}:{self.source}".encode()
        return self.interval * (zlib.crc32(key) / 2**32)

    def next_timeout(self) -> tuple[float, bool]:
        """(timeout for the next probe, whether running into it is only a suspicion)."""
        model = self.model
        if model is None or not model.adaptive:
            return self.timeout, False
        t = model.confirm_timeout() if self.confirming else model.timeout()
        return t, t < self.timeout

    def wake(self) -> None:
        """Cut the current wait short (the next probe runs now)."""
        if self.waker is not None and not self.waker.done():
            self.waker.set_result(True)


class Prober:
    """Runs every registered check on its own schedule and emits observations."""

    def __init__(self, clock: Clock, emit: Emit) -> None:
        self._clock = clock
        self._emit = emit
        self._loops: dict[tuple[str, int], list[_Loop]] = {}

    def add(
        self,
        target: TargetId,
        replica: int,
        source: str,
        probe: ProbeFn,
        *,
        interval: float,
        timeout: float,
        adaptive: bool = False,
        failures: int = 2,
        start_within: float | None = None,
    ) -> None:
        """Start probing one check of one replica (``adaptive``: learn its timeout, never
        taking longer to fail a silent target than ``failures`` full timeouts would).

        ``start_within``: the first probe comes within this many seconds (still spread by
        the check's phase) rather than within one interval: a target taken over from a
        controller that went silent may have been failing all along.
        """
        loop = _Loop(target, replica, source, probe, interval, timeout, failures=failures, start_within=start_within)
        if adaptive:
            loop.model = AdaptiveTimeout(ceiling_s=timeout)
        loop.task = asyncio.get_running_loop().create_task(self._run(loop), name=f"probe:{target}#{replica}")
        self._loops.setdefault((target, replica), []).append(loop)

    async def remove(self, target: str, replica: int) -> None:
        """Stop probing a replica (scaled in or target removed)."""
        loops = self._loops.pop((target, replica), [])
        await _cancel([lp.task for lp in loops if lp.task])

    def expedite(self, target: str, replica: int, seconds: float) -> None:
        """Probe this replica every few milliseconds for ``seconds`` (after a restart)."""
        until = self._clock.monotonic() + seconds
        for lp in self._loops.get((target, replica), []):
            lp.expedite_until = until
            lp.wake()

    def relax(self, target: str, replica: int) -> None:
        """Return a replica's checks to their normal interval."""
        for lp in self._loops.get((target, replica), []):
            lp.expedite_until = 0.0

    def timeouts(self) -> dict[tuple[str, int, str], float]:
        """The timeout each check's next regular probe will get (adaptive or the spec's)."""
        return {
            (lp.target, lp.replica, lp.source): lp.model.timeout() if lp.model is not None else lp.timeout
            for loops in self._loops.values()
            for lp in loops
        }

    def answer_times(self, *qs: float) -> dict[tuple[str, int, str], tuple[float, ...]]:
        """Per adaptive check: the ``qs`` quantiles of its recent healthy answer times (seconds)."""
        out: dict[tuple[str, int, str], tuple[float, ...]] = {}
        for loops in self._loops.values():
            for lp in loops:
                if lp.model is None or lp.model.samples == 0:
                    continue
                out[(lp.target, lp.replica, lp.source)] = tuple(lp.model.latency_quantile(q) or 0.0 for q in qs)
        return out

    async def close(self) -> None:
        """Stop every probe loop."""
        tasks = [lp.task for loops in self._loops.values() for lp in loops if lp.task]
        self._loops.clear()
        await _cancel(tasks)

    async def _run(self, lp: _Loop) -> None:
        clock = self._clock
        first = lp.first_delay
        next_tick = clock.monotonic() + first
        if await _sleep_or_wake(lp, first):  # an expedite (a restart) probes at once
            next_tick = clock.monotonic()
        while True:
            start = clock.monotonic()
            timeout, provisional = lp.next_timeout()
            if provisional and lp.model is not None and not lp.confirming:
                await self._suspecting(lp, lp.model, timeout, start)
                end = clock.monotonic()
            else:
                ok, detail, timed_out = await self._probe_once(lp, timeout)
                end = clock.monotonic()
                self._report(lp, start, end, ok, detail, suspected=False)
                # A timeout at the ceiling while the model still learns is confirmed at
                # once (one expedited probe), not at the next tick.
                lp.confirming = timed_out and lp.model is not None and not lp.confirming
                if lp.confirming:
                    next_tick = clock.monotonic()
                    continue
            interval = EXPEDITED_INTERVAL_S if end < lp.expedite_until else lp.interval
            next_tick += interval
            if next_tick < end:  # overran: skip missed ticks rather than bunch them
                next_tick = end + interval - ((end - next_tick) % interval)
            if await _sleep_or_wake(lp, next_tick - clock.monotonic()):
                next_tick = clock.monotonic()

    def _report(self, lp: _Loop, start: float, end: float, ok: bool, detail: str, *, suspected: bool) -> None:
        """Emit one observation; a healthy answer's time is learned."""
        if ok and lp.model is not None:
            lp.model.observe(end - start)
        self._emit(
            Observation(
                lp.target,
                lp.source,
                self._clock.now(),
                ok,
                latency_s=end - start,
                detail=detail + (" (adaptive)" if suspected else ""),
                replica=lp.replica,
                suspected=suspected,
            )
        )

    async def _suspecting(self, lp: _Loop, model: AdaptiveTimeout, short: float, start: float) -> None:
        """One probe under a learned timeout: suspected after ``short``, failed after the span.

        The probe stays open for the whole silence span; when ``short`` passes without an
        answer a suspicion is reported and a second, fresh probe is sent beside it (a lost
        request is not a hang). The first answer from either settles it; if neither
        answers within the span, counted from this probe's start, the failure is reported.
        So the confirmation costs no extra round trip after the suspicion, and a target
        whose answers merely got slower is still heard within the span.
        """
        clock = self._clock
        span = model.silence_span(lp.failures)
        first = asyncio.ensure_future(self._probe_once(lp, span))
        tasks = {first}
        try:
            done, _ = await asyncio.wait(tasks, timeout=short)
            if first in done:
                ok, detail, timed_out = first.result()
                if not timed_out:
                    self._report(lp, start, clock.monotonic(), ok, detail, suspected=False)
                    return
                # The whole span ran out before the suspicion was raised (only when time
                # is simulated, or the loop stalled): suspect now, confirm with one probe.
                self._report(lp, start, clock.monotonic(), False, detail, suspected=True)
                again = clock.monotonic()
                ok, detail, _ = await self._probe_once(lp, short)
                self._report(lp, again, clock.monotonic(), ok, detail, suspected=False)
                return
            self._report(lp, start, clock.monotonic(), False, f"timeout after {short * 1000:.0f} ms", suspected=True)
            again = clock.monotonic()
            second = asyncio.ensure_future(self._probe_once(lp, max(short, span - (again - start))))
            tasks.add(second)
            pending = set(tasks)
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    ok, detail, timed_out = task.result()
                    if ok or not timed_out:  # an answer, good or bad, settles it
                        began = start if task is first else again
                        self._report(lp, began, clock.monotonic(), ok, detail, suspected=False)
                        return
            silent = clock.monotonic() - start
            self._report(
                lp, again, clock.monotonic(), False, f"timeout: silent for {silent * 1000:.0f} ms", suspected=False
            )
        finally:
            for task in tasks:
                task.cancel()

    @staticmethod
    async def _probe_once(lp: _Loop, timeout: float) -> tuple[bool, str, bool]:
        """(ok, detail, timed out)."""
        try:
            ok, detail = await lp.probe(timeout)
        except TimeoutError:
            return False, f"timeout after {timeout * 1000:.0f} ms", True
        except (OSError, ValueError) as exc:
            return False, f"{type(exc).__name__}: {exc}", False
        return ok, detail, False


async def _sleep_or_wake(lp: _Loop, delay: float) -> bool:
    """Sleep ``delay`` seconds unless woken; True when woken early.

    A bare future plus ``call_later`` costs far less than ``wait_for`` on an event, which
    matters at thousands of probes per second.
    """
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[bool] = loop.create_future()
    lp.waker = fut
    handle = loop.call_later(max(0.0, delay), _settle, fut)
    try:
        await fut
    finally:
        handle.cancel()
        lp.waker = None
    return fut.result()


def _settle(fut: asyncio.Future[bool]) -> None:
    if not fut.done():
        fut.set_result(False)


async def _cancel(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
