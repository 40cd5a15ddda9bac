"""The simulated clock honours the Clock protocol and moves only with the simulation."""

from __future__ import annotations

import asyncio

import pytest

from novacron.clock import Clock
from novacron.errors import InputError
from novacron.twin import SimClock, Simulator, TwinFault


def test_is_a_clock(quiet: Simulator) -> None:
    clock = SimClock(quiet, epoch=1000.0)
    assert isinstance(clock, Clock)
    assert clock.now() == 1000.0
    assert clock.monotonic() == 0.0
    quiet.advance_to(12.5)
    assert clock.monotonic() == 12.5
    assert clock.now() == 1012.5


async def test_sleep_advances_simulated_time_not_wall_time(quiet: Simulator) -> None:
    clock = SimClock(quiet)
    woke: list[tuple[str, float]] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append((name, clock.monotonic()))

    tasks = [asyncio.create_task(sleeper("b", 3600.0)), asyncio.create_task(sleeper("a", 0.25))]
    await clock.run(until=7200.0)
    await asyncio.gather(*tasks)
    assert [name for name, _ in woke] == ["a", "b"]
    assert [t for _, t in woke] == pytest.approx([0.25, 3600.0])
    assert quiet.now == pytest.approx(7200.0)


async def test_controller_loop_heals_through_the_api(quiet: Simulator) -> None:
    """A probe-and-restart loop written against Clock, run on simulated time."""
    clock = SimClock(quiet)
    quiet.inject_fault(5, TwinFault.CRASH)

    async def control_loop() -> float:
        while quiet.vm_health(5):
            await clock.sleep(0.1)
        done = quiet.apply_action(5, "restart")
        await clock.sleep(done - clock.monotonic())
        while not quiet.vm_health(5):
            await clock.sleep(0.1)
        return clock.monotonic()

    healed_at = await clock.run_until_done(control_loop(), limit_s=600.0)
    assert healed_at == pytest.approx(quiet.healer_params.restart_s, abs=0.2)


async def test_zero_sleep_yields(quiet: Simulator) -> None:
    clock = SimClock(quiet)
    await clock.sleep(0)
    assert clock.monotonic() == 0.0


async def test_run_refuses_going_back(quiet: Simulator) -> None:
    clock = SimClock(quiet)
    quiet.advance_to(10)
    with pytest.raises(InputError):
        await clock.run(until=5.0)


async def test_unfinished_work_is_reported(quiet: Simulator) -> None:
    clock = SimClock(quiet)

    async def forever() -> None:
        while True:
            await clock.sleep(1.0)

    with pytest.raises(InputError, match="did not finish"):
        await clock.run_until_done(forever(), limit_s=10.0)
