"""What-if predicts consequences on a copy; forecasts look ahead without touching the present."""

from __future__ import annotations

import numpy as np
import pytest

from novacron.errors import InputError
from novacron.twin import HealerParams, Simulator, SyntheticWorkload, TraceWorkload, TwinFault, build_fleet
from novacron.twin.forecast import forecast
from novacron.twin.whatif import PlannedAction, rank_actions, what_if


def test_what_if_leaves_the_real_state_alone(quiet: Simulator) -> None:
    quiet.inject_fault(3, TwinFault.CRASH)
    before = quiet.state.copy()
    result = what_if(quiet, [PlannedAction("restart", 3)], horizon_s=120.0)
    assert quiet.now == before.t
    assert quiet.state.status[3] == before.status[3]
    np.testing.assert_array_equal(quiet.state.temp_c, before.temp_c)
    assert result.vms_down_at_end == 0
    assert quiet.actions == {}


def test_restart_beats_doing_nothing_for_a_crash(quiet: Simulator) -> None:
    quiet.inject_fault(3, TwinFault.CRASH)
    idle = what_if(quiet, [], horizon_s=600.0)
    fix = what_if(quiet, [PlannedAction("restart", 3)], horizon_s=600.0)
    assert fix.availability > idle.availability
    assert idle.vms_down_at_end == 1
    assert fix.vms_down_at_end == 0
    ranked = rank_actions(quiet, [[], [PlannedAction("restart", 3)]], horizon_s=600.0)
    assert ranked[0][0] == 1


def test_hypothetical_host_failure_and_evacuation(quiet: Simulator) -> None:
    host = int(quiet.state.vm_host[0])
    residents = [int(v) for v in np.flatnonzero(quiet.state.vm_host == host)]
    evacuate = [PlannedAction("migrate", v) for v in residents]
    hurt = what_if(quiet, [], 3600.0, faults=[(0, TwinFault.HOST_FAILURE)], dt_s=10.0)
    saved = what_if(quiet, evacuate, 3600.0, faults=[(0, TwinFault.HOST_FAILURE)], dt_s=10.0)
    assert hurt.vms_down_at_end == len(residents)
    assert saved.vms_down_at_end == 0
    assert saved.cost < hurt.cost  # over an hour, migrations cost less than the downtime
    assert saved.risk_parts["overload"] >= hurt.risk_parts["overload"]
    assert quiet.state.host_up[host]


def test_actions_in_flight_carry_over(quiet: Simulator) -> None:
    quiet.inject_fault(3, TwinFault.CRASH)
    quiet.apply_action(3, "restart")
    result = what_if(quiet, [], horizon_s=120.0)
    assert result.vms_down_at_end == 0


def test_what_if_refuses_bad_horizon(quiet: Simulator) -> None:
    with pytest.raises(InputError, match="horizon_s"):
        what_if(quiet, [], horizon_s=0.0)
    with pytest.raises(InputError, match="at_s"):
        what_if(quiet, [PlannedAction("restart", 1, at_s=-1.0)], horizon_s=10.0)


def test_forecast_follows_the_diurnal_load() -> None:
    topo = build_fleet(4, 20, seed=0, n_groups=1)
    wl = SyntheticWorkload(n_groups=1, amplitude=0.5, phase_spread=0.0)
    sim = Simulator(topo, healer=HealerParams(enabled=False), workload=wl)
    rows = forecast(sim, 24)
    assert [r.hour for r in rows] == list(range(1, 25))
    util = np.array([r.mean_util for r in rows])
    assert np.argmax(util) < 8 < np.argmin(util) + 1  # sine peaks at 6 h, troughs at 18 h
    assert util.max() > 1.5 * util.min()
    assert sim.now == 0.0


def test_forecast_sees_a_disk_filling_and_a_host_overheating(quiet: Simulator) -> None:
    quiet.inject_fault(int(np.flatnonzero(quiet.state.vm_host == 1)[0]), TwinFault.DISK_FILL)
    quiet.inject_fault(int(np.flatnonzero(quiet.state.vm_host == 2)[0]), TwinFault.THERMAL_RUNAWAY)
    rows = forecast(quiet, 3)
    assert rows[0].peak_disk_fill == 1.0
    assert rows[0].peak_temp_c > quiet.params.throttle_c
    assert rows[-1].availability < 1.0


def test_seasonal_naive_repeats_the_last_period() -> None:
    series = np.concatenate([np.full(12, 1.0), np.full(12, 3.0)] * 3)  # period 24 samples
    wl = TraceWorkload.from_array(series, step_s=300.0, n_groups=1)
    ahead = wl.seasonal_naive(now_s=72 * 300.0, period_s=24 * 300.0)
    for k in range(24):
        t = 72 * 300.0 + k * 300.0
        assert ahead.multipliers(t)[0] == pytest.approx(wl.multipliers(t - 24 * 300.0)[0])


def test_forecast_refuses_bad_hours(quiet: Simulator) -> None:
    with pytest.raises(InputError, match="hours"):
        forecast(quiet, 0)
