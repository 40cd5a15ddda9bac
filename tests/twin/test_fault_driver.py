"""The fault driver never strikes a failing fleet: an incident raised between faults is a relapse."""

from __future__ import annotations

import shutil
from pathlib import Path

from novacron.runtime.controller import Controller
from novacron.runtime.faultrun import FaultPlan, FaultTimes, run_plan, twin_injector
from novacron.runtime.simloop import run_simulated
from novacron.runtime.twinfleet import build_twin_simulator
from novacron.twin.clock import SimClock
from tests.twin.test_twin_store_time import _spec


def _run_with_a_relapse(tmp_path: Path) -> FaultTimes:
    spec = _spec(tmp_path)
    sim = build_twin_simulator(spec)
    clock = SimClock(sim)

    async def main() -> FaultTimes:
        ctl = Controller(spec, clock=clock, twin=sim, seed=1, workdir=Path(spec.controller.workdir))
        await ctl.start()
        inject = twin_injector(ctl)
        relapsed: list[FaultPlan] = []

        def after(plan: FaultPlan) -> None:
            if not relapsed:  # the first repair does not hold: the service falls over again at once
                relapsed.append(plan)
                inject("svc", "crash")

        try:
            plans = [FaultPlan("crash", "svc", "svc")] * 3
            return await run_plan(ctl, inject, plans, settle_s=0.5, after=after)
        finally:
            await ctl.stop()

    try:
        return run_simulated(main(), clock)
    finally:
        shutil.rmtree(tmp_path / "work", ignore_errors=True)


def test_a_repair_that_does_not_hold_counts_against_its_fault_and_is_never_struck_over(tmp_path: Path) -> None:
    times = _run_with_a_relapse(tmp_path)
    assert times.relapses == 1
    assert [r.relapsed for r in times.results] == [True, False, False]
    assert [r.held for r in times.results] == [False, True, True]
    # Every fault the driver struck opened an incident of its own: none landed on the relapse's.
    ids = [r.incident_id for r in times.results]
    assert None not in ids
    assert len(set(ids)) == 3
