"""The demo-fleet timing model, the benchmark's shape and the CLI end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from novacron.benchmarks.twin import run_twin_bench
from novacron.errors import InputError
from novacron.twin.fidelity import DemoFleetParams, predict_mttx, simulate_mttx


@pytest.mark.parametrize("kind", ["crash", "hang"])
@pytest.mark.parametrize("exit_watch", [True, False])
def test_formula_agrees_with_the_simulator(kind: str, exit_watch: bool) -> None:
    params = DemoFleetParams(exit_watch=exit_watch)
    mttd, mttr = predict_mttx(kind, params)
    sim_d, sim_r = simulate_mttx(kind, params, trials=12, seed=1)
    assert sim_d == pytest.approx(mttd, abs=0.03)
    assert sim_r == pytest.approx(mttr, abs=0.03)


def test_hang_takes_longer_than_crash_and_scales_with_the_probe() -> None:
    crash = predict_mttx("crash")
    hang = predict_mttx("hang")
    assert hang[0] > crash[0]
    assert hang[1] > crash[1]
    slow = predict_mttx("hang", DemoFleetParams(probe_interval_s=1.0))
    # phase 0.5 + one more probe a full interval later (the 0.25 s timeout fits in it) + timeout
    assert slow[0] == pytest.approx(0.5 + 1.0 + 0.25)


def test_fidelity_model_refuses_other_kinds_and_bad_params() -> None:
    with pytest.raises(InputError, match="crash and hang"):
        predict_mttx("leak")
    with pytest.raises(InputError, match="probe_interval_s"):
        DemoFleetParams(probe_interval_s=0.0)


def test_bench_reports_the_four_figures() -> None:
    result = run_twin_bench(10, 50, horizon_s=120.0, simpy_horizon_s=5.0, fault_rate_per_hour=30.0, repeats=1)
    for key in ("speedup_vs_realtime", "steps_per_s", "speedup_vs_simpy", "peak_rss_mb"):
        assert result[key] > 0
    assert result["simpy_max_abs_diff"]["temp_c"] < 1e-9
    assert result["simpy_max_abs_diff"]["latency_s"] < 1e-9
    json.dumps(result)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    code = "import sys; from novacron.cli import main; sys.argv = ['novacron', *sys.argv[1:]]; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=False)


def test_cli_run_prints_a_summary() -> None:
    proc = _cli("twin", "run", "--hosts", "6", "--vms", "30", "--fault-rate", "20", "--duration", "2h", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["sim_seconds"] == 7200.0
    assert out["healed"] + out["prevented"] + out["open"] == out["faults"]


def test_cli_forecast_reads_a_trace(tmp_path: Path) -> None:
    trace = tmp_path / "t.csv"
    trace.write_text("cpu,mem\n" + "".join(f"{10 + (i % 288) / 10},{50}\n" for i in range(600)))
    proc = _cli("twin", "forecast", "--hours", "2", "--hosts", "4", "--vms", "8", "--trace", str(trace), "--json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert [r["hour"] for r in rows] == [1, 2]
    bad = _cli("twin", "forecast", "--trace", str(trace), "--column", "nope")
    assert bad.returncode == 2
    assert "nope" in bad.stderr


def test_cli_what_if_ranks_plans() -> None:
    proc = _cli(
        "twin", "what-if", "--hosts", "4", "--vms", "8", "--fault", "crash:2",
        "--plan", "restart:2", "--horizon", "10m",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stdout.splitlines() if "restart:2" in line or "none" in line]
    assert "restart:2" in lines[0]  # restarting the crashed VM ranks above doing nothing
