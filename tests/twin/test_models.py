"""Each physics model does what it says."""

from __future__ import annotations

import numpy as np
import pytest

from novacron.twin import (
    Burst,
    HealerParams,
    PhysicsParams,
    Simulator,
    Topology,
    TraceWorkload,
    TwinFault,
    VmStatus,
    build_fleet,
)


def _vm_on(sim: Simulator, host: int) -> int:
    return int(np.flatnonzero(sim.state.vm_host == host)[0])


def test_queueing_latency_grows_with_load() -> None:
    topo = build_fleet(2, 20, seed=0, n_groups=1)
    low = Simulator(topo, healer=HealerParams(enabled=False))
    high = Simulator(topo, healer=HealerParams(enabled=False))
    high.state.agg *= 1.8  # same hosts, 80 % more demand
    low.advance_to(5)
    high.advance_to(5)
    assert (high.state.util > low.state.util).all()
    assert (high.state.cpu_latency_s > low.state.cpu_latency_s).all()


def test_saturation_builds_a_backlog_that_fails_probes(quiet: Simulator) -> None:
    vm = _vm_on(quiet, 3)
    quiet.inject_fault(vm, TwinFault.NOISY_NEIGHBOUR)
    quiet.advance_to(30)
    assert quiet.state.backlog[3] > 0
    assert quiet.state.cpu_latency_s[3] > quiet.params.probe_timeout_s
    neighbour = int(np.flatnonzero(quiet.state.vm_host == 3)[1])
    assert not quiet.vm_health(neighbour)
    assert quiet.vm_health(_vm_on(quiet, 4))


def test_a_raised_cpu_share_shields_a_vm_from_its_noisy_neighbour_until_undone(quiet: Simulator) -> None:
    noisy, victim, other = (int(v) for v in np.flatnonzero(quiet.state.vm_host == 3)[:3])
    quiet.inject_fault(noisy, TwinFault.NOISY_NEIGHBOUR)
    quiet.advance_to(30)
    assert not quiet.vm_health(victim)
    done = quiet.apply_action(victim, "reallocate")
    assert quiet.state.status[victim] == VmStatus.UP  # the VM keeps running while its share changes
    quiet.advance_to(done + quiet.params.dt_s)
    assert quiet.vm_health(victim)
    assert quiet.state.vm_ok(quiet.params)[victim]
    assert not quiet.vm_health(other), "only the reallocated VM is served before the neighbour's excess"
    assert quiet.state.cpu_latency_of(victim) < quiet.params.probe_timeout_s < quiet.state.cpu_latency_of(other)
    quiet.state.vm_priority[victim] = False  # what the inverse does
    quiet.advance_to(quiet.now + 1)
    assert not quiet.vm_health(victim)


def test_thermal_throttles_above_temperature_then_powers_off() -> None:
    topo = build_fleet(2, 20, seed=0, n_groups=1)
    sim = Simulator(topo, healer=HealerParams(enabled=False))
    sim.advance_to(600)
    assert not sim.state.throttled.any()
    assert sim.state.temp_c.max() < sim.params.throttle_c
    sim.inject_fault(_vm_on(sim, 0), TwinFault.THERMAL_RUNAWAY)
    cap_before = sim.state.util[0]
    while not sim.state.throttled[0]:
        sim.step()
    assert sim.state.temp_c[0] > sim.params.throttle_c
    sim.step()
    assert sim.state.util[0] > cap_before  # same demand on half the clock
    sim.advance_to(sim.now + 3600)
    assert not sim.state.host_up[0]
    assert sim.state.host_up[1]


def test_hot_host_cools_after_repair() -> None:
    sim = Simulator(build_fleet(2, 4, seed=0, n_groups=1), healer=HealerParams(enabled=False))
    sim.state.temp_c[:] = 90.0
    sim.advance_to(3000)
    assert (sim.state.temp_c < sim.params.throttle_c).all()


def test_partition_blocks_traffic_and_reachability(quiet: Simulator) -> None:
    quiet.advance_to(5)
    topo = quiet.topo
    mine = (topo.link_src == 2) | (topo.link_dst == 2)
    others_before = quiet.state.link_util[~mine].sum()
    quiet.inject_fault(_vm_on(quiet, 2), TwinFault.PARTITION)
    quiet.advance_to(10)
    assert (quiet.state.link_util[mine] == 0).all()
    assert not quiet.state.reachable()[2]
    assert not quiet.vm_health(_vm_on(quiet, 2))
    assert quiet.vm_health(_vm_on(quiet, 5))
    # the partitioned host's neighbours now push their traffic over fewer links
    assert quiet.state.link_util[~mine].sum() > 0.5 * others_before


def test_leak_crashes_when_memory_is_exhausted(quiet: Simulator) -> None:
    vm = 7
    limit = quiet.topo.vm_mem_limit_gb[vm] - quiet.topo.vm_mem_gb[vm]
    quiet.inject_fault(vm, TwinFault.LEAK)
    quiet.advance_to(0.5 * limit / quiet.params.leak_gb_per_s)
    assert quiet.state.status[vm] == VmStatus.UP
    assert quiet.state.mem_extra_gb[vm] > 0
    quiet.advance_to(1.1 * limit / quiet.params.leak_gb_per_s)
    assert quiet.state.status[vm] == VmStatus.CRASHED
    assert not quiet.vm_health(vm)


def test_disk_fill_fills_then_fails_probes(quiet: Simulator) -> None:
    vm = _vm_on(quiet, 1)
    quiet.inject_fault(vm, TwinFault.DISK_FILL)
    free = quiet.topo.host_disk_gb[1] - quiet.state.disk_used_gb[1]
    quiet.advance_to(free / quiet.params.disk_fill_gb_per_s + 2)
    assert quiet.state.disk_used_gb[1] == quiet.topo.host_disk_gb[1]
    assert not quiet.vm_health(vm)


def test_storage_latency_rises_with_iops() -> None:
    topo = build_fleet(2, 20, seed=0, n_groups=1)
    sim = Simulator(topo, healer=HealerParams(enabled=False))
    before = sim.state.io_latency_s.copy()
    sim.state.agg[1] *= 3.0
    sim.step()
    assert (sim.state.io_latency_s > before).all()


def test_host_failure_and_crash_and_hang(quiet: Simulator) -> None:
    quiet.inject_fault(_vm_on(quiet, 6), TwinFault.HOST_FAILURE)
    quiet.inject_fault(0, TwinFault.CRASH)
    quiet.inject_fault(1, TwinFault.HANG)
    quiet.step()
    on_six = np.flatnonzero(quiet.state.vm_host == 6)
    assert not any(quiet.vm_health(int(v)) for v in on_six)
    assert quiet.state.util[6] == 0
    assert quiet.state.status[1] == VmStatus.HUNG
    assert not quiet.vm_health(0)
    assert not quiet.vm_health(1)


def test_congested_link_drops_and_slows(topo: Topology) -> None:
    params = PhysicsParams()
    sim = Simulator(topo, physics=params, healer=HealerParams(enabled=False))
    sim.state.agg[2] *= 200.0  # far more egress than the links carry
    sim.step()
    assert (sim.state.link_util > 1).any()
    assert sim.state.net_latency_s.max() > params.probe_timeout_s * 0.5


def test_trace_workload_drives_utilisation() -> None:
    topo = build_fleet(2, 20, seed=0, n_groups=1)
    trace = TraceWorkload.from_array([1.0, 1.0, 3.0, 3.0], step_s=300.0, n_groups=1)
    sim = Simulator(topo, healer=HealerParams(enabled=False), workload=trace)
    sim.advance_to(60)
    quiet_util = sim.state.util.copy()
    sim.advance_to(660)
    assert (sim.state.util > 2.0 * quiet_util).all()


def test_bursts_add_and_remove_demand(quiet: Simulator) -> None:
    host = int(quiet.state.vm_host[0])
    quiet.advance_to(5)
    base = quiet.state.util[host]
    quiet.schedule_bursts([Burst(t=10.0, vm=0, cores=6.0, duration_s=20.0)])
    quiet.advance_to(15)
    assert quiet.state.util[host] > base
    quiet.advance_to(40)
    assert quiet.state.util[host] == pytest.approx(base, rel=0.05)
