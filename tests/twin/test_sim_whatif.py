"""What-if in the planner: the twin vetoes hopeless ladder steps and is checked afterwards."""

from __future__ import annotations

import pytest

from novacron.actuators.sim import targets_for
from novacron.errors import InputError
from novacron.model import ActionKind, ActionStatus
from novacron.runtime.simcontroller import SimController, SimTargets
from novacron.runtime.simloop import run_simulated
from novacron.runtime.whatif import Calibration, WhatIfAdvisor
from novacron.sensors.sim import SimSensor, sim_target
from novacron.settings import Policy
from novacron.twin import HealerParams, SimClock, Simulator, build_fleet
from novacron.twin.whatif import PlannedAction, time_to_healthy


def _sim() -> Simulator:
    return Simulator(build_fleet(3, 6, seed=2, n_groups=2), healer=HealerParams(enabled=False, probe_interval_s=1.0))


def test_time_to_healthy_follows_the_action_and_the_host() -> None:
    sim = _sim()
    sim.inject_fault(1, "crash")
    assert time_to_healthy(sim, 1, [PlannedAction("restart", 1)], 120.0) == pytest.approx(30.0)
    assert time_to_healthy(sim, 1, [], 120.0) is None
    sim.inject_fault(2, "host_failure")
    assert time_to_healthy(sim, 2, [PlannedAction("restart", 2)], 120.0) is None
    assert time_to_healthy(sim, 2, [PlannedAction("migrate", 2)], 120.0) == pytest.approx(60.0)
    assert sim.vm_health(2) is False  # the present was not touched
    with pytest.raises(InputError, match="vm"):
        time_to_healthy(sim, 99, [], 10.0)
    with pytest.raises(InputError, match="step_s"):
        time_to_healthy(sim, 1, [], 10.0, step_s=0.0)


def _healed(fault: str) -> tuple[SimController, Simulator, list[tuple[str, dict[str, object]]]]:
    sim = _sim()
    clock = SimClock(sim)
    sim.schedule_fault(10.0, 0, fault)
    targets = SimTargets(targets_for(range(sim.topo.n_vms)), probe_interval_s=1.0, probe_timeout_s=0.5)

    async def main() -> tuple[SimController, list[tuple[str, dict[str, object]]]]:
        ctl = SimController(clock, targets, Policy(), seed=1, advisor_factory=WhatIfAdvisor.factory())
        await ctl.start()
        try:
            await clock.sleep(300.0)
            incident = next(i for i in ctl.store.incidents() if i.target == sim_target(0))
            return ctl, [(e.kind, dict(e.data)) for e in ctl.store.timeline(incident.id)]
        finally:
            await ctl.stop()

    ctl, timeline = run_simulated(main(), clock)
    return ctl, sim, timeline


def test_a_restart_on_a_dead_host_is_vetoed_and_replace_heals() -> None:
    ctl, sim, timeline = _healed("host_failure")
    kinds = [k for k, _ in timeline]
    assert "what_if_veto" in kinds
    assert kinds.index("what_if_veto") < kinds.index("verified")
    first = next(d for k, d in timeline if k == "what_if")
    assert first["predicted_recovery_s"] is None
    assert first["veto"] is True
    assert first["alternatives"] == {"replace": pytest.approx(60.0)}
    assert isinstance(ctl.healer.advisor, WhatIfAdvisor)
    summary = ctl.healer.advisor.calibration.summary()
    # Every VM on the dead host had its restart vetoed and its replace checked.
    assert summary["vetoes"] == summary["predictions"] >= 1
    assert summary["outcome_accuracy"] == 1.0
    assert all(r.t_recover is not None for r in sim.records)


def test_a_crash_restart_is_predicted_and_then_checked() -> None:
    _ctl, _, timeline = _healed("crash")
    kinds = [k for k, _ in timeline]
    assert "what_if" in kinds
    assert "what_if_checked" in kinds
    assert "what_if_veto" not in kinds
    check = next(d for k, d in timeline if k == "what_if_checked")
    assert check["outcome_matched"] is True
    assert isinstance(check["error_s"], float)
    assert abs(check["error_s"]) < 1.5


def test_the_advisor_ignores_actions_it_cannot_model() -> None:
    sim = _sim()
    sensor = SimSensor(sim, targets_for(range(6)))
    advisor = WhatIfAdvisor(sim, sensor, [ActionKind.RESTART, ActionKind.REPLACE, ActionKind.ESCALATE])
    from novacron.healing.catalog import new_action

    assert advisor.review(new_action(ActionKind.SCALE_OUT, sim_target(0), key="k")) is None
    assert advisor.review(new_action(ActionKind.RESTART, sim_target(0), key="k")) is not None


def test_calibration_counts_outcomes_and_errors() -> None:
    cal = Calibration()
    cal.add(30.0, 31.0)
    cal.add(None, None)
    cal.add(60.0, None)
    out = cal.summary()
    assert out["predictions"] == 3
    assert out["outcome_accuracy"] == pytest.approx(2 / 3, abs=1e-3)
    assert out["recovery_mae_s"] == pytest.approx(1.0)
    assert ActionStatus.FAILED.value == "failed"
