"""After a start a replica is probed fast until it proves itself, then at its own interval."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from novacron.clock import MonotonicClock
from novacron.healing.health import HealthTracker
from novacron.model import TargetId
from novacron.runtime.compose import observe_proving
from novacron.sensors.probes import Prober


async def test_a_replica_proven_healthy_goes_back_to_its_interval() -> None:
    clock = MonotonicClock()
    health = HealthTracker(clock, on_fault=lambda _f: None, on_recovered=lambda _t: None)
    calls: list[float] = []

    async def probe(_timeout: float) -> tuple[bool, str]:
        calls.append(clock.monotonic())
        ready = len(calls) > 3  # it answers from its fourth probe on
        return ready, "HTTP 200" if ready else "HTTP 503"

    prober = Prober(clock, lambda obs: observe_proving(health, prober, obs))
    health.configure("svc", 0, {"http:0": 2}, start_timeout_s=30.0)
    prober.add(TargetId("svc"), 0, "http:0", probe, interval=0.5, timeout=0.25)
    health.process_started("svc", 0)
    prober.expedite("svc", 0, 30.0)
    for _ in range(1000):
        if health.is_healthy("svc"):
            break
        await asyncio.sleep(0.01)
    assert health.is_healthy("svc"), "proven by the fast probes after the start"
    proven = len(calls)
    await asyncio.sleep(1.0)
    await prober.close()
    # At its 0.5 s interval that is two or three probes; still expedited it would be ~50.
    assert len(calls) - proven <= 5


async def test_a_check_taken_over_is_probed_within_its_start_window_not_its_interval() -> None:
    clock = MonotonicClock()
    seen: dict[str, list[float]] = {"taken": []}

    def probe_for(name: str) -> Callable[[float], Awaitable[tuple[bool, str]]]:
        async def probe(_timeout: float) -> tuple[bool, str]:
            seen[name].append(clock.monotonic())
            return False, "HTTP 500"

        return probe

    prober = Prober(clock, lambda _obs: None)
    began = clock.monotonic()
    # An hour-long interval: its phase alone would put the first probe anywhere in the hour.
    prober.add(TargetId("taken"), 0, "http:0", probe_for("taken"), interval=3600.0, timeout=1.0, start_within=0.05)
    for _ in range(1000):
        if seen["taken"]:
            break
        await asyncio.sleep(0.01)
    await prober.close()
    assert seen["taken"], "a target taken over is probed at once"
    assert seen["taken"][0] - began < 10.0
