"""Impossible fleets and parameters are refused with errors naming the item."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from novacron.errors import InputError
from novacron.twin import HealerParams, PhysicsParams, Simulator, Topology, TraceWorkload, build_fleet


def _fleet(**override: object) -> dict[str, dict[str, object]]:
    hosts: dict[str, object] = {
        "cores": [8.0, 8.0], "mem_gb": [64.0, 64.0], "iops": [1e4, 1e4],
        "disk_gb": [100.0, 100.0], "net_gbps": [10.0, 10.0],
    }  # fmt: skip
    vms: dict[str, object] = {
        "host": [0, 1, 1], "cpu": [1.0, 1.0, 2.0], "mem_gb": [4.0, 4.0, 8.0],
        "iops": [100.0, 100.0, 100.0], "net_gbps": [0.1, 0.1, 0.1],
    }  # fmt: skip
    links: dict[str, object] = {"src": [0], "dst": [1], "gbps": [10.0]}
    tables = {"hosts": hosts, "vms": vms, "links": links}
    for key, value in override.items():
        table, col = key.split("__")
        tables[table][col] = value
    return tables


def _create(**override: object) -> Topology:
    t = _fleet(**override)
    return Topology.create(t["hosts"], t["vms"], t["links"])  # type: ignore[arg-type]


def test_a_good_fleet_builds() -> None:
    topo = _create()
    assert (topo.n_hosts, topo.n_vms, topo.n_links) == (2, 3, 1)


@given(st.floats(max_value=0.0, allow_nan=False), st.sampled_from(["cores", "mem_gb", "iops", "disk_gb"]))
@settings(max_examples=25, deadline=None)
def test_non_positive_host_capacity_names_the_host(value: float, column: str) -> None:
    caps = [8.0, value]
    with pytest.raises(InputError, match=rf"hosts\.{column}\[1\]"):
        _create(**{f"hosts__{column}": caps})


@given(st.integers().filter(lambda i: i < 0 or i > 1))
@settings(max_examples=25, deadline=None)
def test_links_to_unknown_hosts_are_refused(host: int) -> None:
    with pytest.raises(InputError, match=r"links\.dst(\[0\])?: .*(not a known|integer)"):
        _create(links__dst=[host])


def test_self_loop_link_is_refused() -> None:
    with pytest.raises(InputError, match=r"links\[0\]"):
        _create(links__dst=[0])


def test_vm_without_host_is_refused() -> None:
    with pytest.raises(InputError, match=r"vms\.host\[2\].*no host"):
        _create(vms__host=[0, 1, -1])
    with pytest.raises(InputError, match=r"vms\.host\[0\].*not a known host"):
        _create(vms__host=[7, 1, 1])


def test_negative_vm_demand_and_nan_are_refused() -> None:
    with pytest.raises(InputError, match=r"vms\.cpu\[1\]"):
        _create(vms__cpu=[1.0, -2.0, 1.0])
    with pytest.raises(InputError, match=r"hosts\.mem_gb\[0\]"):
        _create(hosts__mem_gb=[float("nan"), 64.0])


def test_missing_and_misshaped_columns() -> None:
    t = _fleet()
    del t["hosts"]["iops"]
    with pytest.raises(InputError, match=r"hosts\.iops"):
        Topology.create(t["hosts"], t["vms"], t["links"])  # type: ignore[arg-type]
    with pytest.raises(InputError, match=r"vms\.cpu"):
        _create(vms__cpu=[1.0])


@given(st.floats(max_value=0.0, allow_nan=False))
@settings(max_examples=20, deadline=None)
def test_zero_width_steps_are_refused(dt: float) -> None:
    with pytest.raises(InputError, match=r"PhysicsParams\.dt_s"):
        PhysicsParams(dt_s=dt)


def test_bad_policy_and_workload_parameters() -> None:
    with pytest.raises(InputError, match=r"HealerParams\.probe_interval_s"):
        HealerParams(probe_interval_s=0.0)
    with pytest.raises(InputError, match="throttle_c"):
        PhysicsParams(throttle_c=120.0)
    with pytest.raises(InputError, match=r"row 1"):
        TraceWorkload.from_array([1.0, -1.0, 2.0], n_groups=2)
    with pytest.raises(InputError, match="groups"):
        Simulator(build_fleet(2, 4, n_groups=3), workload=TraceWorkload.from_array([1.0, 2.0], n_groups=2))


def test_time_cannot_run_backwards() -> None:
    sim = Simulator(build_fleet(2, 4), healer=HealerParams(enabled=False))
    sim.advance_to(10)
    with pytest.raises(InputError, match="advance_to"):
        sim.advance_to(5)


def test_random_faults_need_a_sane_rate() -> None:
    sim = Simulator(build_fleet(2, 4), healer=HealerParams(enabled=False))
    with pytest.raises(InputError, match="fault_rate"):
        sim.schedule_random_faults(-1.0, 60.0)
    with pytest.raises(InputError, match="fault_rate"):
        sim.schedule_random_faults(float(np.inf), 60.0)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["twin", "run", "--duration", "0h"], "--duration"),
        (["twin", "run", "--hosts", "0"], "--hosts"),
        (["twin", "forecast", "--hours", "-3"], "--hours"),
        (["twin", "forecast", "--hours", "100000"], "error: --hours: must be > 0 and at most 720"),
        (["twin", "run", "--fault-rate", "nan"], "error: --fault-rate: must be a finite number >= 0"),
        (["twin", "run", "--probe-interval", "0"], "error: --probe-interval: must be a finite number > 0"),
        (["twin", "run", "--controller", "--fault-rate", "-1"], "error: --fault-rate: "),
        (["twin", "forecast", "--vms", "50", "--inject", "disk_fill:50"], "error: --inject: 'disk_fill:50': 50 is not"),
        (["twin", "what-if", "--fault", "host_failure:x"], "error: --fault: expected KIND:VM (e.g. disk_fill:12)"),
        (["twin", "what-if", "--fault", "bogus:1"], "error: --fault: unknown fault kind 'bogus'"),
        (["twin", "what-if", "--plan", "migrate"], "error: --plan: expected KIND:VM (e.g. migrate:12)"),
        (["twin", "what-if", "--plan", "migrate:1,crash:2"], "error: --plan: unknown action kind 'crash'"),
        (["twin", "what-if", "--vms", "100", "--plan", "migrate:100"], "error: --plan: 'migrate:100': 100 is not"),
    ],
)
def test_cli_exits_2_naming_the_option(args: list[str], needle: str) -> None:
    code = "import sys; from novacron.cli import main; sys.argv = ['novacron', *sys.argv[1:]]; main()"
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=False)
    assert proc.returncode == 2, proc.stderr
    assert needle in proc.stderr


def test_forecast_at_a_time_past_the_trace_is_refused(tmp_path: Path) -> None:
    trace = tmp_path / "day.csv"  # one day of 5-minute rows
    trace.write_text("cpu\n" + "".join(f"{50 + i % 10}\n" for i in range(288)))
    code = "import sys; from novacron.cli import main; sys.argv = ['novacron', *sys.argv[1:]]; main()"
    args = ["twin", "forecast", "--hours", "1", "--hosts", "2", "--vms", "4", "--trace", str(trace), "--at", "3d"]
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=False)
    assert proc.returncode == 2, proc.stderr
    assert "error: --at: '3d' is past the end of the trace (1 d)" in proc.stderr
