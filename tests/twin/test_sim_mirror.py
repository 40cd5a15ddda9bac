"""The twin mirrors a running controller's fleet: health, incidents, other writers."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import pytest

from novacron.actuators.sim import targets_for
from novacron.errors import InputError
from novacron.model import FaultKind, Incident, IncidentId, IncidentStatus, Priority, TargetId
from novacron.runtime.mirror import TwinMirror
from novacron.runtime.simcontroller import SimController, SimTargets
from novacron.runtime.simloop import run_simulated
from novacron.sensors.sim import sim_target
from novacron.settings import Policy
from novacron.twin import HealerParams, SimClock, Simulator, VmStatus, build_fleet


def _run(check_at: float = 60.0) -> tuple[TwinMirror, dict[str, float]]:
    sim = Simulator(build_fleet(2, 4, seed=1, n_groups=1), healer=HealerParams(enabled=False, probe_interval_s=1.0))
    clock = SimClock(sim)
    topology: Mapping[str, Sequence[str]] = {
        sim_target(0): [],
        sim_target(1): [sim_target(0)],
        sim_target(2): [],
        sim_target(3): [],
    }
    targets = SimTargets(targets_for(range(4)), depends_on=topology, probe_interval_s=1.0, probe_timeout_s=0.5)
    sim.schedule_fault(10.0, 1, "crash")
    marks: dict[str, float] = {}

    async def main() -> TwinMirror:
        ctl = SimController(clock, targets, Policy(), seed=1)
        await ctl.start()
        mirror = TwinMirror(ctl, clock, topology)
        mirror.attach()
        try:
            await clock.sleep(5.0)
            marks["healthy_before"] = float(mirror.targets[sim_target(1)].health == "healthy")
            await clock.sleep(5.5)  # the crash struck at 10 s
            marks["incident_during"] = float(mirror.targets[sim_target(1)].incident is not None)
            await clock.sleep(check_at)
            outsider = Incident(
                IncidentId("inc-outside"),
                TargetId(sim_target(3)),
                FaultKind.ALERT,
                IncidentStatus.OPEN,
                Priority.P3,
                clock.now(),
                clock.now(),
            )
            ctl.store.insert_incident(outsider)  # written behind the controller's back
            marks["written"] = clock.monotonic()
            await clock.sleep(0.1)
            marks["outsider_seen"] = float(mirror.targets[sim_target(3)].incident == "inc-outside")
            ctl.store.update_incident(dataclasses.replace(outsider, status=IncidentStatus.RESOLVED))
            await clock.sleep(0.1)
            return mirror
        finally:
            await mirror.close()
            await ctl.stop()

    return run_simulated(main(), clock), marks


def test_the_mirror_follows_health_incidents_and_other_writers() -> None:
    mirror, marks = _run()
    assert marks["healthy_before"] == 1.0
    assert marks["incident_during"] == 1.0
    assert marks["outsider_seen"] == 1.0
    assert mirror.topology[sim_target(1)] == (sim_target(0),)
    final = mirror.targets
    assert final[sim_target(1)].health == "healthy"
    assert final[sim_target(1)].incident is None
    assert final[sim_target(3)].incident is None  # the outsider's resolution arrived too
    seen = [at for name, why, at in mirror.changes if name == sim_target(3) and why == "store:incident"]
    assert seen
    assert 0 <= seen[0] - marks["written"] <= 0.05 + 1e-6


def test_the_crash_reaches_the_mirror_when_it_happens() -> None:
    mirror, _ = _run(check_at=1.0)
    first = next(at for name, why, at in mirror.changes if name == sim_target(1) and why.startswith("incident:"))
    assert first == pytest.approx(10.0, abs=1e-6)  # the exit watch and the listener: no delay


def test_the_mirror_becomes_a_twin_of_the_live_fleet() -> None:
    mirror, _ = _run(check_at=1.0)
    mirror.targets[sim_target(2)] = dataclasses.replace(
        mirror.targets[sim_target(2)], health="unhealthy", healthy_replicas=0
    )
    sim, first = mirror.simulator()
    assert sim.topo.n_vms == 4
    assert sim.state.status[first[sim_target(2)]] == VmStatus.HUNG
    assert sim.vm_health(first[sim_target(0)])


def test_bad_poll_intervals_are_refused() -> None:
    with pytest.raises(InputError, match="poll"):
        TwinMirror(object(), SimClock(Simulator(build_fleet(1, 1))), {}, health_poll_s=0.0)  # type: ignore[arg-type]
