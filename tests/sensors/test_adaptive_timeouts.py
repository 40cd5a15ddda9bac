"""Adaptive probe timeouts: learned from the target's latencies, confirmed before acting."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from novacron.clock import FakeClock
from novacron.detectors.latency import AdaptiveTimeout
from novacron.errors import InputError
from novacron.healing.health import HealthTracker
from novacron.model import Fault, FaultKind, Observation, TargetId
from novacron.sensors.looplag import LoopLag
from novacron.sensors.probes import Prober

_INTERVAL = 0.005  # real seconds between ticks of the fake schedule, to keep the test quick


def test_timeout_follows_a_shifting_latency_distribution() -> None:
    model = AdaptiveTimeout(ceiling_s=0.5, floor_s=0.01, min_samples=20)
    assert model.timeout() == 0.5, "the spec's timeout until it has learned"
    assert not model.adaptive
    for _ in range(40):
        model.observe(0.004)
    assert model.timeout() == pytest.approx(0.012)
    assert model.adaptive
    assert model.confirm_timeout() == pytest.approx(0.012), "the fresh probe: a deadline of its own"
    assert model.silence_span() == pytest.approx(0.024), "suspicion plus confirmation"
    model.observe(0.05)  # one stall it recovered from: the confirmation, not the span, covers it
    for _ in range(250):
        model.observe(0.004)
    assert model.timeout() == pytest.approx(0.012)
    assert model.silence_span() == pytest.approx(0.024)
    for _ in range(10):  # a few slower answers: the confirmation waits for them, the suspicion does not
        model.observe(0.02)
    assert model.timeout() == pytest.approx(0.012), "3 x p95"
    assert model.confirm_timeout() == pytest.approx(0.06), "3 x p99"
    assert model.silence_span() == pytest.approx(0.072)
    for _ in range(256):  # the target slows down: its timeout grows with it
        model.observe(0.060)
    assert model.timeout() == pytest.approx(0.18)
    assert model.silence_span(failures=2) == pytest.approx(0.36)
    for _ in range(256):  # slower than the ceiling allows: bounded by the spec
        model.observe(0.4)
    assert model.timeout() == 0.5
    assert model.silence_span(failures=2) == 1.0, "never longer than the fixed rule"
    assert not model.adaptive


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("ceiling_s", {"ceiling_s": 0.0}),
        ("quantile", {"ceiling_s": 1.0, "quantile": 1.0}),
        ("confirm_factor", {"ceiling_s": 1.0, "confirm_factor": 0.5}),
        ("window", {"ceiling_s": 1.0, "window": 0}),
    ],
)
def test_bad_parameters_name_the_field(field: str, kwargs: dict[str, Any]) -> None:
    with pytest.raises(InputError, match=field):
        AdaptiveTimeout(**kwargs)


class _Target:
    """A fake target on a FakeClock: each probe takes the next latency from a script."""

    def __init__(self, clock: FakeClock, latencies: Callable[[int], float]) -> None:
        self.clock = clock
        self.latencies = latencies
        self.calls: list[tuple[float, float]] = []  # (latency, timeout given)
        self.learned = 0.0  # the suspicion timeout in force when the run ended

    async def probe(self, timeout: float) -> tuple[bool, str]:
        latency = self.latencies(len(self.calls))
        self.calls.append((latency, timeout))
        await asyncio.sleep(0)
        if latency > timeout:
            self.clock.advance(timeout)
            raise TimeoutError
        self.clock.advance(latency)
        return True, "HTTP 200"


async def _run(target: _Target, probes: int, *, failures: int = 1) -> tuple[list[Observation], list[Fault]]:
    clock = target.clock
    faults: list[Fault] = []
    health = HealthTracker(clock, on_fault=faults.append, on_recovered=lambda _t: None)
    health.configure("svc", 0, {"http:0": failures}, start_timeout_s=60.0)
    health.process_started("svc", 0)
    seen: list[Observation] = []

    def emit(obs: Observation) -> None:
        seen.append(obs)
        health.observe(obs)

    prober = Prober(clock, emit)
    prober.add(TargetId("svc"), 0, "http:0", target.probe, interval=_INTERVAL, timeout=0.25, adaptive=True)
    while len(target.calls) < probes:
        await asyncio.sleep(0.001)
    target.learned = prober.timeouts()[("svc", 0, "http:0")]
    await prober.close()
    return seen, faults


def _shifting(shift_at: int, before: float, after: float) -> Callable[[int], float]:
    return lambda i: before if i < shift_at else after


async def test_prober_learns_a_shift_upwards_without_a_fault() -> None:
    target = _Target(FakeClock(), _shifting(60, 0.003, 0.045))
    seen, faults = await _run(target, 120)
    timeouts = [t for _, t in target.calls]
    assert timeouts[0] == 0.25
    assert max(timeouts[30:60]) == pytest.approx(0.06), "a 3 ms target: silent for 2 x its 30 ms timeout"
    assert target.learned == pytest.approx(0.135, rel=1e-3), "…which follows its latency up (3 × p99)"
    assert faults == [], "slower answers that still arrive are learned, never acted on"
    assert not any(o.suspected for o in seen), "a 45 ms answer arrives inside the 60 ms span"


async def test_one_slow_answer_is_confirmed_and_not_acted_on() -> None:
    slow = 45
    target = _Target(FakeClock(), lambda i: 0.2 if i == slow else 0.003)
    seen, faults = await _run(target, 80)
    assert seen[slow].suspected
    assert not seen[slow].healthy
    assert seen[slow + 1].healthy, "the confirming probe answered"
    assert target.calls[slow][1] == pytest.approx(0.06), "the suspected probe was open for the whole span"
    assert faults == []


async def test_a_hang_is_found_in_two_short_timeouts() -> None:
    hang = 50
    target = _Target(FakeClock(), lambda i: 0.003 if i < hang else 10.0)
    _seen, faults = await _run(target, hang + 3, failures=1)
    assert len(faults) == 1
    assert faults[0].kind is FaultKind.HANG
    waited = sum(t for _, t in target.calls[hang : hang + 2])
    assert waited < 0.1, f"suspected and confirmed after {waited * 1000:.0f} ms, not 2 x 250 ms"


async def test_one_slow_answer_does_not_widen_the_span_for_a_later_hang() -> None:
    """The protection against one slow answer is the confirmation, not a wider span."""
    slow, hang = 45, 120
    target = _Target(FakeClock(), lambda i: 0.2 if i == slow else 0.003 if i < hang else 10.0)
    _seen, faults = await _run(target, hang + 3, failures=2)
    assert [f.kind for f in faults] == [FaultKind.HANG]
    waited = sum(t for _, t in target.calls[hang : hang + 2])
    assert waited < 0.1, f"found after {waited * 1000:.0f} ms: the 200 ms answer was not learned as a span"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--load", "-1"], "--load: must be between 0 and 64"),
        (["--timeouts", "bogus"], "--timeouts: must be one of adaptive, fixed"),
    ],
)
def test_bench_healing_names_a_bad_flag(args: list[str], message: str) -> None:
    res = subprocess.run(
        [sys.executable, "-m", "novacron.cli", "bench", "healing", *args, "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode == 2
    assert message in res.stderr


def test_bench_healing_fleet_has_no_slow_burn_faults(tmp_path: Path) -> None:
    """Only injected faults may be repaired: the demo's leak and filling disk are off."""
    from novacron.benchmarks.healing import _prepare

    spec, names = _prepare(None, None, tmp_path, "adaptive")
    assert len(names) == len(spec.targets)
    for target in spec.targets:
        flags = dict(zip(target.command, target.command[1:], strict=False))
        for flag in ("--leak-mb-per-s", "--fill-mb-per-s"):
            assert float(flags.get(flag, "0")) == 0.0, f"{target.name} {flag}"


class _StalledTarget:
    """A real target on the event loop: answers in 1 ms until it hangs for good."""

    def __init__(self, hang_at: int) -> None:
        self.hang_at = hang_at
        self.calls: list[tuple[float, float]] = []  # (loop time sent, timeout given)
        self.finished: list[float] = []

    async def probe(self, timeout: float) -> tuple[bool, str]:
        loop = asyncio.get_running_loop()
        self.calls.append((loop.time(), timeout))
        try:
            async with asyncio.timeout(timeout):
                await asyncio.sleep(0.001 if len(self.calls) <= self.hang_at else 60.0)
        finally:
            self.finished.append(loop.time())
        return True, "HTTP 200"


async def test_the_confirming_probe_runs_beside_the_suspected_one() -> None:
    from novacron.clock import MonotonicClock

    hang = 25
    target = _StalledTarget(hang)
    faults: list[Fault] = []
    clock = MonotonicClock()
    health = HealthTracker(clock, on_fault=faults.append, on_recovered=lambda _t: None)
    health.configure("svc", 0, {"http:0": 2}, start_timeout_s=60.0)
    health.process_started("svc", 0)
    seen: list[Observation] = []

    def emit(obs: Observation) -> None:
        seen.append(obs)
        health.observe(obs)

    prober = Prober(clock, emit)
    prober.add(TargetId("svc"), 0, "http:0", target.probe, interval=0.01, timeout=0.25, adaptive=True, failures=2)
    for _ in range(3000):
        if faults:
            break
        await asyncio.sleep(0.005)
    await prober.close()
    assert [f.kind for f in faults] == [FaultKind.HANG]
    (sent_1, span), (sent_2, rest) = target.calls[hang], target.calls[hang + 1]
    assert sent_2 < target.finished[hang], "the confirmation went out while the first probe was open"
    assert span <= 0.5, "never longer than the two full timeouts it replaces"
    assert sent_2 > sent_1
    assert rest < span, "the confirmation only waits out the rest of the span, not a span of its own"
    suspected = [o for o in seen if o.suspected]
    assert len(suspected) == 1
    assert not seen[-1].healthy


class _BlockingTarget:
    """Answers in about a millisecond; one probe blocks the whole event loop first.

    The block stands for the controller's own loop being busy (a synchronous write, an
    import) while a probe is in flight: the target answered, the controller was not
    listening.
    """

    def __init__(self, block_at: int, block_s: float) -> None:
        self.block_at = block_at
        self.block_s = block_s
        self.calls = 0

    async def probe(self, timeout: float) -> tuple[bool, str]:
        self.calls += 1
        if self.calls == self.block_at:
            time.sleep(self.block_s)  # noqa: ASYNC251 - blocks the loop, on purpose
        async with asyncio.timeout(timeout):
            await asyncio.sleep(0.001)
        return True, "HTTP 200"


async def test_a_blocked_controller_loop_is_not_the_targets_silence() -> None:
    from novacron.clock import MonotonicClock

    block_at = 40
    target = _BlockingTarget(block_at, 0.3)
    faults: list[Fault] = []
    clock = MonotonicClock()
    health = HealthTracker(clock, on_fault=faults.append, on_recovered=lambda _t: None)
    health.configure("svc", 0, {"http:0": 2}, start_timeout_s=60.0)
    health.process_started("svc", 0)
    seen: list[Observation] = []

    def emit(obs: Observation) -> None:
        seen.append(obs)
        health.observe(obs)

    prober = Prober(clock, emit)
    prober.add(TargetId("svc"), 0, "http:0", target.probe, interval=0.01, timeout=0.25, adaptive=True, failures=2)
    for _ in range(3000):
        if target.calls > block_at + 30:
            break
        await asyncio.sleep(0.005)
    learned = prober.timeouts()[("svc", 0, "http:0")]
    await prober.close()
    blocked = next(o for o in seen if o.latency_s is not None and o.latency_s >= 0.3)
    assert blocked.healthy, "the answer that came while the loop was blocked was heard"
    assert not blocked.suspected, "the block was not counted as the target's silence"
    assert faults == []
    assert learned < 0.15, f"the block was not learned as the target's latency ({learned * 1000:.0f} ms)"


async def test_looplag_measures_a_blocked_loop() -> None:
    lag = LoopLag()
    lag.start()
    try:
        await asyncio.sleep(0.05)
        before = lag.stalled()
        time.sleep(0.3)  # noqa: ASYNC251 - blocks the loop, on purpose
        await asyncio.sleep(0.05)
        assert lag.stalled() - before >= 0.25
    finally:
        lag.stop()
