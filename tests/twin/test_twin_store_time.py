"""On the twin, the controller's store writes cost no simulated time: repairs take what the twin says."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from novacron.runtime.controller import Controller
from novacron.runtime.faultrun import FaultPlan, FaultTimes, run_plan, twin_injector
from novacron.runtime.simloop import run_simulated
from novacron.runtime.twinfleet import build_twin_simulator
from novacron.sensors.probes import EXPEDITED_INTERVAL_S
from novacron.settings import FleetSpec, parse_spec
from novacron.store.guard import GuardedStore
from novacron.twin.clock import SimClock

_RESTART_S = 0.05
_LATENCY_S = 0.002


def _spec(tmp_path: Path) -> FleetSpec:
    check = {"type": "http", "url": "http://twin/health", "interval_s": 0.1, "timeout_s": 0.25, "failures": 2}
    raw: dict[str, Any] = {
        "name": "store-time",
        "policy": {"flap": {"threshold": 1000}, "max_actions_per_target_per_hour": 1000},
        # A file store: each write takes real milliseconds, as in `novacron learn`.
        "controller": {"store_url": f"sqlite:///{tmp_path / 'twin.db'}", "workdir": str(tmp_path / "work")},
        "twin": {"restart_s": _RESTART_S, "stop_s": 0.0, "probe_latency_s": _LATENCY_S, "dt_s": 0.01},
        "targets": [{"name": "svc", "kind": "sim", "checks": [check]}],
    }
    return parse_spec(raw)


def _crashes(spec: FleetSpec, count: int) -> tuple[FaultTimes, bool]:
    sim = build_twin_simulator(spec)
    clock = SimClock(sim)

    async def main() -> tuple[FaultTimes, bool]:
        ctl = Controller(spec, clock=clock, twin=sim, seed=1, workdir=Path(spec.controller.workdir))
        await ctl.start()
        try:
            inline = isinstance(ctl.store, GuardedStore) and ctl.store.inline
            plans = [FaultPlan("crash", "svc", "svc")] * count
            return await run_plan(ctl, twin_injector(ctl), plans), inline
        finally:
            await ctl.stop()

    return run_simulated(main(), clock)


def test_crash_repairs_on_the_twin_take_the_twins_time_only(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    try:
        times, inline = _crashes(spec, 8)
    finally:
        shutil.rmtree(tmp_path / "work", ignore_errors=True)
    assert inline, "under simulated time the store writes inline"
    assert times.healed == 8
    mttr = times.mttr["crash"]
    # restart, then the expedited verifying probe and its answer; nothing for the store.
    bound = _RESTART_S + EXPEDITED_INTERVAL_S + _LATENCY_S + 0.02
    assert max(mttr) <= bound, mttr
    assert max(mttr) - min(mttr) < 0.01, "the same fault on the same twin heals in the same simulated time"
