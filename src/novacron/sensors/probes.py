"""Active health probes (http, tcp, exec) on one event loop, one lightweight task per check.

Each loop probes, reports an :class:`~novacron.model.Observation`, then sleeps to the next
tick of its own schedule (ticks are skipped, never bunched, when a probe overruns).
After a restart the controller *expedites* a replica's checks so recovery is confirmed
within tens of milliseconds instead of a full interval.

With an adaptive timeout (:class:`~novacron.detectors.latency.AdaptiveTimeout`) a target
that has not answered within a few multiples of its own high-quantile response time is
*suspected*, and a second, fresh probe is sent beside the first, which stays open, with a
deadline of its own (the confirmation). The target is failed only if neither answers, so
a hung process is found in a few latency quantiles while one slow answer or a lost
request never causes an action. Deadlines count only the time the controller's event
loop could listen (:mod:`novacron.sensors.looplag`), and the latencies learned leave the
loop's own stalls out, so a blocked controller is never taken for a silent target.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from novacron.clock import Clock, MonotonicClock
from novacron.detectors.latency import AdaptiveTimeout
from novacron.model import Observation, TargetId
from novacron.sensors.httpprobe import HttpProbeClient
from novacron.sensors.looplag import LoopLag, StallMeter
from novacron.settings import ExecCheck, HttpCheck, TcpCheck

__all__ = ["EXPEDITED_INTERVAL_S", "ProbeFn", "Prober", "make_probe"]

ProbeFn = Callable[[float], Awaitable[tuple[bool, str]]]
Emit = Callable[[Observation], None]
_Result = tuple[bool, str, bool]  # (ok, detail, timed out)

# While a replica is being verified, probe it this often.
EXPEDITED_INTERVAL_S = 0.02
# Listening time left below this is none: no fresh probe could be answered in it.
_LISTEN_RESOLUTION_S = 0.001
# Before a silence is declared, answers already received get this long to be read.
_READ_GRACE_S = 0.005


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


@dataclass(frozen=True)
class _Mark:
    """A moment, with the loop's stall total then: listening time is counted from it."""

    at: float
    stalled: float


class _NoStalls:
    """Simulated time has no event-loop stalls to leave out."""

    def stalled(self) -> float:
        return 0.0


class Prober:
    """Runs every registered check on its own schedule and emits observations.

    ``stalls`` is what tells how long the event loop was blocked; by default a
    :class:`~novacron.sensors.looplag.LoopLag` on the real clock, none on a simulated one.
    """

    def __init__(self, clock: Clock, emit: Emit, *, stalls: StallMeter | None = None) -> None:
        self._clock = clock
        self._emit = emit
        self._loops: dict[tuple[str, int], list[_Loop]] = {}
        self._looplag = LoopLag() if stalls is None and isinstance(clock, MonotonicClock) else None
        self._stalls: StallMeter = stalls or self._looplag or _NoStalls()

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
        taking longer to fail a silent target than ``failures`` full timeouts would, counted
        in listening time).

        ``start_within``: the first probe comes within this many seconds (still spread by
        the check's phase) rather than within one interval: a target taken over from a
        controller that went silent may have been failing all along.
        """
        loop = _Loop(target, replica, source, probe, interval, timeout, failures=failures, start_within=start_within)
        if adaptive:
            loop.model = AdaptiveTimeout(ceiling_s=timeout)
            if self._looplag is not None:
                self._looplag.start()
        loop.task = asyncio.get_running_loop().create_task(self._run(loop), name=f"probe:{target}#{replica}")
        self._loops.setdefault((target, replica), []).append(loop)

    async def remove(self, target: str, replica: int) -> None:
        """Stop probing a replica (scaled in or target removed)."""
        await _wind_down(self.stop(target, replica))

    def stop(self, target: str, replica: int) -> list[asyncio.Task[None]]:
        """Stop probing a replica now; the cancelled probe tasks, for the caller to await.

        At once, not in a task of its own: a target handed over and taken back a moment
        later (a lease that lapsed for one heartbeat) gets new probes, which a removal
        still queued behind it would take away for good.
        """
        tasks = [lp.task for lp in self._loops.pop((target, replica), []) if lp.task]
        for task in tasks:
            task.cancel()
        return tasks

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
        if self._looplag is not None:
            self._looplag.stop()
        for task in tasks:
            task.cancel()
        await _wind_down(tasks)

    def _mark(self) -> _Mark:
        return _Mark(self._clock.monotonic(), self._stalls.stalled())

    def _listened(self, since: _Mark) -> float:
        """Seconds since ``since`` during which the event loop was not blocked."""
        return (self._clock.monotonic() - since.at) - (self._stalls.stalled() - since.stalled)

    async def _run(self, lp: _Loop) -> None:
        clock = self._clock
        first = lp.first_delay
        next_tick = clock.monotonic() + first
        if await _sleep_or_wake(lp, first):  # an expedite (a restart) probes at once
            next_tick = clock.monotonic()
        while True:
            start = self._mark()
            timeout, provisional = lp.next_timeout()
            if provisional and lp.model is not None and not lp.confirming:
                await self._suspecting(lp, lp.model, timeout, start)
            else:
                ok, detail, timed_out = await self._probe_once(lp, timeout)
                self._report(lp, start, ok, detail, suspected=False)
                # A timeout at the ceiling while the model still learns is confirmed at
                # once (one expedited probe), not at the next tick.
                lp.confirming = timed_out and lp.model is not None and not lp.confirming
                if lp.confirming:
                    next_tick = clock.monotonic()
                    continue
            end = clock.monotonic()
            interval = EXPEDITED_INTERVAL_S if end < lp.expedite_until else lp.interval
            next_tick += interval
            if next_tick < end:  # overran: skip missed ticks rather than bunch them
                next_tick = end + interval - ((end - next_tick) % interval)
            if await _sleep_or_wake(lp, next_tick - clock.monotonic()):
                next_tick = clock.monotonic()

    def _report(self, lp: _Loop, start: _Mark, ok: bool, detail: str, *, suspected: bool) -> None:
        """Emit one observation; a healthy answer's time, less the loop's stalls, is learned."""
        latency = self._clock.monotonic() - start.at
        if ok and lp.model is not None:
            lp.model.observe(max(0.0, self._listened(start)))
        self._emit(
            Observation(
                lp.target,
                lp.source,
                self._clock.now(),
                ok,
                latency_s=latency,
                detail=detail + (" (adaptive)" if suspected else ""),
                replica=lp.replica,
                suspected=suspected,
            )
        )

    async def _suspecting(self, lp: _Loop, model: AdaptiveTimeout, short: float, start: _Mark) -> None:
        """One probe under a learned timeout: suspected after ``short``, confirmed or cleared.

        The probe stays open; when ``short`` passes without an answer a suspicion is
        reported and a second, fresh probe is sent beside it with a deadline of its own
        (:meth:`AdaptiveTimeout.confirm_timeout`). The first answer from either settles
        it; if neither answers by that deadline the failure is reported. Both deadlines
        count listening time only (the loop's stalls are left out), but the whole wait is
        never longer than ``failures`` full timeouts of wall time, the fixed rule's bound:
        a loop that lags all the time (a saturated machine) must not make the learned
        rule slower than the rule it replaces.
        """
        until = start.at + max(1, lp.failures) * lp.timeout
        first = asyncio.ensure_future(self._probe_once(lp, model.silence_span(lp.failures)))
        tasks: list[asyncio.Future[_Result]] = [first]
        try:
            answer = await self._listen(lp, tasks, short, start, until)
            if answer is not None:
                self._report(lp, start, *answer[1][:2], suspected=False)
                return
            self._report(lp, start, False, f"timeout after {short * 1000:.0f} ms", suspected=True)
            again = self._mark()
            confirm = model.confirm_timeout()
            tasks.append(asyncio.ensure_future(self._probe_once(lp, confirm)))
            answer = await self._listen(lp, tasks, confirm, again, until)
            if answer is not None:
                self._report(lp, start if answer[0] is first else again, *answer[1][:2], suspected=False)
                return
            silent = self._listened(start)
            self._report(lp, again, False, f"timeout: silent for {silent * 1000:.0f} ms", suspected=False)
        finally:
            for task in tasks:
                task.cancel()

    async def _listen(
        self, lp: _Loop, tasks: list[asyncio.Future[_Result]], seconds: float, since: _Mark, until: float
    ) -> tuple[asyncio.Future[_Result], _Result] | None:
        """The first answer (good or bad, not a timeout) within ``seconds`` of listening time.

        Never past ``until`` on the monotonic clock. A probe's own timeout runs on the wall
        clock; when every probe has run into it while the loop was blocked, a fresh probe
        gets the listening time that is left. Before giving up, answers already received
        get a moment to be read: the loop may only just have come back from a stall.
        """
        while True:
            answer = _answer(tasks)
            if answer is not None:
                return answer
            remaining = min(seconds - self._listened(since), until - self._clock.monotonic())
            pending = [t for t in tasks if not t.done()]
            if remaining < _LISTEN_RESOLUTION_S:
                if pending:
                    await asyncio.wait(pending, timeout=_READ_GRACE_S)
                return _answer(tasks)
            if not pending:
                tasks.append(asyncio.ensure_future(self._probe_once(lp, remaining)))
                continue
            await asyncio.wait(pending, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)

    @staticmethod
    async def _probe_once(lp: _Loop, timeout: float) -> _Result:
        """(ok, detail, timed out)."""
        try:
            ok, detail = await lp.probe(timeout)
        except TimeoutError:
            return False, f"timeout after {timeout * 1000:.0f} ms", True
        except (OSError, ValueError) as exc:
            return False, f"{type(exc).__name__}: {exc}", False
        return ok, detail, False


def _answer(tasks: list[asyncio.Future[_Result]]) -> tuple[asyncio.Future[_Result], _Result] | None:
    """The first finished probe that got an answer, good or bad (a timeout is none)."""
    for task in tasks:
        if task.done() and not task.result()[2]:
            return task, task.result()
    return None


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


async def _wind_down(tasks: list[asyncio.Task[None]]) -> None:
    await asyncio.gather(*tasks, return_exceptions=True)
