"""The real controller flow heals a simulated fleet through sim:// sensors and actuators."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from novacron.actuators.sim import SimActuator, targets_for
from novacron.benchmarks.twin_controller import ControllerRun, run_twin_controller
from novacron.errors import InputError
from novacron.healing.catalog import new_action
from novacron.model import ActionKind, ActionStatus, IncidentStatus, TargetId
from novacron.runtime.simcontroller import SimController, SimTargets
from novacron.runtime.simloop import SimEventLoop, run_simulated
from novacron.sensors.sim import SimSensor, parse_sim_target, sim_target
from novacron.settings import Policy
from novacron.twin import HealerParams, SimClock, Simulator, build_fleet

T = TypeVar("T")


def _fleet(vms: int = 6) -> tuple[Simulator, SimClock]:
    sim = Simulator(build_fleet(3, vms, seed=2, n_groups=2), healer=HealerParams(enabled=False, probe_interval_s=1.0))
    return sim, SimClock(sim)


def _run_controller(
    sim: Simulator, clock: SimClock, horizon: float, check: Callable[[SimController], Awaitable[T]]
) -> T:
    targets = SimTargets(targets_for(range(sim.topo.n_vms)), probe_interval_s=1.0, probe_timeout_s=0.5)

    async def main() -> T:
        ctl = SimController(clock, targets, Policy(), seed=1)
        await ctl.start()
        try:
            await clock.sleep(horizon)
            return await check(ctl)
        finally:
            await ctl.stop()

    return run_simulated(main(), clock)


def test_crash_and_hang_are_healed_by_restarts_through_the_executor() -> None:
    sim, clock = _fleet()
    sim.schedule_fault(20.0, 1, "crash")
    sim.schedule_fault(40.0, 2, "hang")

    async def check(ctl: SimController) -> dict[str, object]:
        incidents = ctl.store.incidents()
        actions = ctl.store.actions()
        timeline = [e.kind for i in incidents for e in ctl.store.timeline(i.id)]
        return {"incidents": incidents, "actions": actions, "timeline": timeline}

    out = _run_controller(sim, clock, 200.0, check)
    incidents = out["incidents"]
    assert isinstance(incidents, list)
    assert {i.target for i in incidents} == {sim_target(1), sim_target(2)}
    assert all(i.status is IncidentStatus.RESOLVED for i in incidents)
    kinds = {i.target: i.kind.value for i in incidents}
    assert kinds == {sim_target(1): "crash", sim_target(2): "hang"}
    actions = out["actions"]
    assert isinstance(actions, list)
    assert {(a.action.kind, a.status) for a in actions} == {(ActionKind.RESTART, ActionStatus.VERIFIED)}
    timeline = out["timeline"]
    assert isinstance(timeline, list)
    assert {"detected", "diagnosed", "action_started", "verified", "resolved"} <= set(timeline)
    assert all(r.t_recover is not None for r in sim.records)
    # The crash is seen as an exit (at once); the hang needs two probes that time out.
    crash, hang = sorted(incidents, key=lambda i: i.target)
    assert crash.mttd_s == pytest.approx(0.0, abs=1e-6)
    assert 1.0 <= hang.mttd_s <= 2.0 + 0.5


def test_a_dead_host_makes_restart_fail_and_replace_moves_the_vm() -> None:
    sim, clock = _fleet()
    host = int(sim.state.vm_host[0])
    sim.schedule_fault(10.0, 0, "host_failure")

    async def check(ctl: SimController) -> list[tuple[ActionKind, ActionStatus]]:
        return [(a.action.kind, a.status) for a in ctl.store.actions(limit=100)]

    actions = _run_controller(sim, clock, 400.0, check)
    assert (ActionKind.RESTART, ActionStatus.FAILED) in actions
    assert (ActionKind.REPLACE, ActionStatus.VERIFIED) in actions
    assert int(sim.state.vm_host[0]) != host
    assert all(r.t_recover is not None for r in sim.records)


def test_the_run_summary_pairs_twin_truth_with_the_store() -> None:
    result = run_twin_controller(
        ControllerRun(hosts=4, vms=12, fault_rate_per_hour=30, horizon_s=900, kinds=("crash", "hang"), seed=3)
    )
    twin, ctl = result["twin"], result["controller"]
    assert twin["faults"] >= 1
    assert twin["healed"] + twin["open"] >= twin["faults"] - twin["prevented"]
    assert ctl["incidents"] >= 1
    assert ctl["actions_by_kind"].get("restart", 0) >= 1
    assert json.loads(json.dumps(result)) == result


def test_the_actuator_refuses_what_a_vm_cannot_do() -> None:
    sim, clock = _fleet()
    sensor = SimSensor(sim, targets_for(range(sim.topo.n_vms)))
    actuator = SimActuator(sim, clock, sensor)

    async def main() -> tuple[bool, bool, int]:
        scale = await actuator.apply(new_action(ActionKind.SCALE_OUT, sim_target(0), key="k1"))
        start = await actuator.apply(new_action(ActionKind.START, sim_target(0), key="k2"))
        state = await actuator.observe(sim_target(0))
        return scale.ok, start.ok and start.detail == "already running", state.running

    assert run_simulated(main(), clock) == (False, True, 1)


def test_a_restart_takes_the_twins_time_on_the_simulated_loop() -> None:
    sim, clock = _fleet()
    sensor = SimSensor(sim, targets_for(range(sim.topo.n_vms)))
    actuator = SimActuator(sim, clock, sensor)
    sim.inject_fault(3, "crash")

    async def main() -> tuple[bool, float]:
        outcome = await actuator.apply(new_action(ActionKind.RESTART, sim_target(3), key="k"))
        return outcome.ok, sim.now

    ok, now = run_simulated(main(), clock)
    assert ok
    assert now == pytest.approx(sim.healer_params.restart_s)
    assert sim.vm_health(3)


def test_probes_cost_the_timeout_for_a_hung_vm_and_nothing_for_a_crashed_one() -> None:
    sim, clock = _fleet()
    sensor = SimSensor(sim, targets_for(range(sim.topo.n_vms)))
    sim.inject_fault(1, "crash")
    sim.inject_fault(2, "hang")

    async def main() -> list[tuple[str, float]]:
        out = []
        for vm in (0, 1, 2):
            start = asyncio.get_running_loop().time()
            try:
                ok, detail = await sensor.probe(sim_target(vm))(0.25)
                out.append((f"{ok}:{detail}", asyncio.get_running_loop().time() - start))
            except TimeoutError:
                out.append(("timeout", asyncio.get_running_loop().time() - start))
        return out

    (healthy, t0), (crashed, t1), (hung, t2) = run_simulated(main(), clock)
    assert healthy == "True:HTTP 200"
    assert 0 < t0 < 0.25
    assert crashed.startswith("False:ConnectionRefused")
    assert t1 == 0
    assert hung == "timeout"
    assert t2 == pytest.approx(0.25)


def test_an_observation_reads_the_vm_without_waiting() -> None:
    sim, _ = _fleet()
    sensor = SimSensor(sim, targets_for(range(sim.topo.n_vms)))
    sim.inject_fault(2, "hang")
    good = sensor.observation(sim_target(0), now=5.0)
    bad = sensor.observation(sim_target(2), now=5.0)
    assert (good.healthy, good.detail, good.time) == (True, "HTTP 200", 5.0)
    assert (bad.healthy, bad.detail) == (False, "no answer")


def test_a_full_disk_answers_500_and_a_quiet_run_summarises_to_valid_json() -> None:
    sim, _ = _fleet()
    sensor = SimSensor(sim, targets_for(range(sim.topo.n_vms)))
    host = int(sim.state.vm_host[0])
    sim.state.disk_used_gb[host] = sim.topo.host_disk_gb[host]
    assert sensor.status(sim_target(0)) == (False, "HTTP 500")
    quiet = run_twin_controller(ControllerRun(hosts=2, vms=3, fault_rate_per_hour=0, horizon_s=30))
    assert quiet["controller"]["incidents"] == 0
    assert quiet["controller"]["mttr_s"] == {}
    json.dumps(quiet, allow_nan=False)


def test_crashes_reach_the_exit_watch_at_once() -> None:
    sim, _ = _fleet()
    sensor = SimSensor(sim, {"a": 4})
    seen: list[str] = []
    sensor.watch_exits(seen.append)
    sim.inject_fault(4, "crash")
    sim.inject_fault(5, "crash")  # not one of ours
    assert seen == ["a"]


def test_the_simulated_loop_runs_timers_and_clock_sleepers_on_twin_time() -> None:
    sim, clock = _fleet()

    async def main() -> list[float]:
        marks = []
        await asyncio.sleep(5.0)
        marks.append(sim.now)
        await clock.sleep(7.5)
        marks.append(sim.now)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(3.0):
                await asyncio.Event().wait()
        marks.append(sim.now)
        assert isinstance(asyncio.get_running_loop(), SimEventLoop)
        return marks

    assert run_simulated(main(), clock) == pytest.approx([5.0, 12.5, 15.5])


@given(st.text(max_size=12).filter(lambda s: not s.removeprefix("sim://").removeprefix("vm-").isdigit()))
def test_bad_sim_target_names_are_refused(text: str) -> None:
    with pytest.raises(InputError):
        parse_sim_target(text)


def test_sim_target_names_round_trip() -> None:
    assert parse_sim_target(f"sim://{sim_target(42)}") == 42
    assert parse_sim_target("7") == 7
    with pytest.raises(InputError, match="not in the twin"):
        SimSensor(_fleet()[0], {"x": 99})
    with pytest.raises(InputError, match="fault"):
        ControllerRun(kinds=("meteor",))
    assert TargetId("vm-00001") == sim_target(1)


def test_cli_runs_the_controller_on_the_twin() -> None:
    cmd = [sys.executable, "-m", "novacron.cli", "twin", "run", "--controller", "--hosts", "3", "--vms", "9"]
    cmd += ["--fault-rate", "20", "--duration", "10m", "--seed", "1", "--json"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=True)
    result = json.loads(done.stdout)
    assert result["sim_seconds"] == pytest.approx(600.0)
    assert "incidents" in result["controller"]
    refused = subprocess.run(
        [sys.executable, "-m", "novacron.cli", "twin", "run", "--what-if", "--duration", "1m"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode == 2
    assert "--controller" in refused.stderr + refused.stdout
