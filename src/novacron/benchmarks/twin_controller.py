"""``novacron twin run --controller``: a day of faults healed by the real controller flow.

Builds a twin fleet, schedules random faults, and runs :class:`~novacron.runtime.simcontroller.SimController`
on a :class:`~novacron.runtime.simloop.SimEventLoop`, so probes, health, incidents,
the escalation ladder, the safety gate and the store all run as in production while time
is the twin's. The result puts the twin's ground truth (when each fault struck and when
service came back) beside the controller's record (incidents and actions in the store).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from novacron.actuators.sim import targets_for
from novacron.errors import InputError
from novacron.model import IncidentStatus
from novacron.runtime.simcontroller import AdvisorFactory, SimController, SimTargets
from novacron.runtime.simloop import SimEventLoop, run_simulated
from novacron.runtime.whatif import WhatIfAdvisor
from novacron.settings import Policy
from novacron.twin import HealerParams, SimClock, Simulator, build_fleet
from novacron.twin.faults import parse_fault

from ._stats import percentiles

__all__ = ["ControllerRun", "run_twin_controller"]

Progress = Callable[[float, int], None]  # (simulated seconds so far, faults injected so far)


@dataclass(frozen=True, slots=True)
class ControllerRun:
    """How a controller-on-twin run is set up."""

    hosts: int = 20
    vms: int = 200
    fault_rate_per_hour: float = 60.0
    horizon_s: float = 3600.0
    seed: int = 0
    probe_interval_s: float = 5.0
    probe_timeout_s: float = 1.0
    kinds: tuple[str, ...] = ()  # empty: the twin's default fault mix
    store_url: str = "sqlite:///:memory:"
    progress_every_s: float = 60.0
    what_if: bool = False  # consult the twin before each ladder step (rank/veto, calibration)

    def __post_init__(self) -> None:
        if self.hosts < 1 or self.vms < 1:
            raise InputError(f"need >= 1 host and VM, got {self.hosts} and {self.vms}", where="fleet size")
        for name in ("horizon_s", "probe_interval_s", "probe_timeout_s", "progress_every_s"):
            if not getattr(self, name) > 0:
                raise InputError(f"must be > 0, got {getattr(self, name)}", where=name)
        if self.fault_rate_per_hour < 0:
            raise InputError(f"must be >= 0, got {self.fault_rate_per_hour}", where="fault_rate_per_hour")
        for kind in self.kinds:
            parse_fault(kind)


def run_twin_controller(
    run: ControllerRun,
    *,
    policy: Policy | None = None,
    on_progress: Progress | None = None,
    advisor_factory: AdvisorFactory | None = None,
    setup: Callable[[SimController], None] | None = None,
) -> dict[str, Any]:
    """Run the fleet under the controller and return a JSON-serialisable summary."""
    topo = build_fleet(run.hosts, run.vms, seed=run.seed)
    sim = Simulator(topo, healer=HealerParams(enabled=False, probe_interval_s=run.probe_interval_s), seed=run.seed)
    mix = {parse_fault(k): 1.0 for k in run.kinds} or None
    sim.schedule_random_faults(run.fault_rate_per_hour, run.horizon_s, mix)
    clock = SimClock(sim)
    targets = SimTargets(
        targets_for(range(run.vms)), probe_interval_s=run.probe_interval_s, probe_timeout_s=run.probe_timeout_s
    )
    if advisor_factory is None and run.what_if:
        advisor_factory = WhatIfAdvisor.factory()
    wall = time.perf_counter()

    async def main() -> dict[str, Any]:
        ctl = SimController(
            clock,
            targets,
            policy or Policy(),
            store_url=run.store_url,
            seed=run.seed,
            advisor_factory=advisor_factory,
        )
        if setup is not None:
            setup(ctl)
        await ctl.start()
        try:
            while sim.now < run.horizon_s - 1e-9:
                await clock.sleep(min(run.progress_every_s, run.horizon_s - sim.now))
                if on_progress is not None:
                    on_progress(sim.now, len(sim.records))
            loop = asyncio.get_running_loop()
            advances = loop.advances if isinstance(loop, SimEventLoop) else 0
            return _summarise(ctl, sim, run, time.perf_counter() - wall, advances)
        finally:
            await ctl.stop()

    return run_simulated(main(), clock)


def _summarise(ctl: SimController, sim: Simulator, run: ControllerRun, wall: float, advances: int) -> dict[str, Any]:
    twin = sim.summary().as_dict()
    incidents = ctl.store.incidents(limit=1_000_000)
    by_status = Counter(i.status.value for i in incidents)
    resolved = [i for i in incidents if i.status is IncidentStatus.RESOLVED and i.mttr_s is not None]
    actions = ctl.store.actions(limit=1_000_000)
    by_kind = Counter(a.action.kind.value for a in actions)
    by_outcome = Counter(f"{a.action.kind.value}:{a.status.value}" for a in actions)
    return {
        "hosts": run.hosts,
        "vms": run.vms,
        "sim_seconds": sim.now,
        "wall_s": round(wall, 3),
        "speedup_vs_realtime": round(sim.now / max(wall, 1e-9), 1),
        "loop_time_advances": advances,
        "twin": twin,
        "controller": {
            "incidents": len(incidents),
            "incidents_by_status": dict(sorted(by_status.items())),
            "mttd_s": _quantiles([i.mttd_s for i in incidents]),
            "mttr_s": _quantiles([float(i.mttr_s) for i in resolved if i.mttr_s is not None]),
            "actions_by_kind": dict(sorted(by_kind.items())),
            "actions_by_outcome": dict(sorted(by_outcome.items())),
            "twin_actions_applied": dict(sorted(ctl.actuator.applied.items())),
        },
        "what_if": ctl.healer.advisor.calibration.summary() if isinstance(ctl.healer.advisor, WhatIfAdvisor) else None,
    }


def _quantiles(values: list[float]) -> dict[str, float | None]:
    """p50/p90/p99, or nothing when there is nothing to summarise (JSON has no NaN)."""
    return percentiles(values, (50, 90, 99)) if values else {}
