"""The built-in healer detects and repairs every fault kind; the actuator API works."""

from __future__ import annotations

import numpy as np
import pytest

from novacron.errors import InputError
from novacron.twin import HealerParams, Simulator, Topology, TwinAction, TwinFault, VmStatus, with_healer


@pytest.mark.parametrize("kind", list(TwinFault))
def test_healing_restores_service(healed: Simulator, kind: TwinFault) -> None:
    vm = 9
    fid = healed.inject_fault(vm, kind)
    healed.advance_to(5000)
    rec = healed.records[fid]
    assert rec.t_recover is not None, kind
    assert rec.t_detect is not None, kind
    assert healed.vm_health(vm)
    assert sum(healed.actions.values()) >= 1


def test_crash_is_restarted_within_probe_and_restart_time(healed: Simulator) -> None:
    hp = healed.healer_params
    fid = healed.inject_fault(3, TwinFault.CRASH)
    healed.advance_to(200)
    rec = healed.records[fid]
    assert rec.ttd_s is not None
    assert rec.ttd_s <= hp.failure_threshold * hp.probe_interval_s + 1e-6
    assert rec.ttr_s == pytest.approx(rec.ttd_s + hp.restart_s, abs=1.01)
    assert healed.actions == {"restart": 1}


def test_detection_delay_adds_to_repair_time(topo: Topology) -> None:
    times = []
    for delay in (0.0, 20.0):
        sim = with_healer(Simulator(topo, healer=HealerParams(probe_interval_s=1.0, detection_delay_s=delay)))
        fid = sim.inject_fault(3, TwinFault.HANG)
        sim.advance_to(300)
        ttr = sim.records[fid].ttr_s
        assert ttr is not None
        times.append(ttr)
    assert times[1] == pytest.approx(times[0] + 20.0, abs=1.01)


def test_leak_is_restarted_before_it_crashes(healed: Simulator) -> None:
    fid = healed.inject_fault(4, TwinFault.LEAK)
    healed.advance_to(3000)
    assert healed.records[fid].t_recover is not None
    assert healed.actions["restart"] == 1
    assert healed.state.mem_extra_gb[4] < healed.topo.vm_mem_gb[4]


def test_host_failure_evacuates_then_replaces(healed: Simulator) -> None:
    host = int(healed.state.vm_host[0])
    residents = np.flatnonzero(healed.state.vm_host == host)
    healed.inject_fault(0, TwinFault.HOST_FAILURE)
    healed.advance_to(120)
    assert (healed.state.vm_host[residents] != host).all()
    assert all(healed.vm_health(int(v)) for v in residents)
    healed.advance_to(2000)
    assert healed.state.host_up[host]


def test_apply_action_reports_done_time_and_is_idempotent(quiet: Simulator) -> None:
    quiet.inject_fault(2, TwinFault.CRASH)
    done = quiet.apply_action(2, "restart")
    assert done == quiet.now + quiet.healer_params.restart_s
    assert quiet.apply_action(2, TwinAction.RESTART) == done
    assert quiet.state.status[2] == VmStatus.ACTING
    quiet.advance_to(done)
    assert quiet.vm_health(2)
    assert quiet.records[0].t_recover == pytest.approx(done, abs=quiet.params.dt_s)


def test_migrate_to_named_host(quiet: Simulator) -> None:
    done = quiet.apply_action(0, "migrate", dst=5)
    quiet.advance_to(done)
    assert quiet.state.vm_host[0] == 5
    assert quiet.vm_health(0)


def test_unknown_kinds_and_vms_are_refused(quiet: Simulator) -> None:
    with pytest.raises(InputError, match="unknown fault kind"):
        quiet.inject_fault(0, "meteor")
    with pytest.raises(InputError, match="unknown action kind"):
        quiet.apply_action(0, "pray")
    with pytest.raises(InputError, match="not a VM"):
        quiet.vm_health(10_000)
    with pytest.raises(InputError, match="not a host"):
        quiet.apply_action(0, "migrate", dst=99)


def test_random_run_summary_adds_up(topo: Topology) -> None:
    sim = with_healer(Simulator(topo, healer=HealerParams(probe_interval_s=2.0), seed=4))
    count = sim.schedule_random_faults(10.0, 3 * 3600)
    sim.advance_to(4 * 3600)
    s = sim.summary()
    assert s.faults == count
    assert s.healed + s.prevented + s.open == s.faults
    assert s.healed > 0
    assert 0.95 < s.availability <= 1.0
    assert s.mttr_s["p50"] <= s.mttr_s["p99"]
