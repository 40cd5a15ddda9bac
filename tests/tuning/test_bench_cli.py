"""``novacron bench tuning`` at toy sizes: one JSON object with every figure the issue names."""

from __future__ import annotations

import json

from tests.cli.runner import cli


def test_bench_tuning_prints_every_figure() -> None:
    res = cli(
        "bench", "tuning", "--only", "bo,nsga2", "--reference", "4", "--seeds", "2", "--budget", "2",
        "--zdt1-generations", "3", "--generations", "1", "--population", "4", "--json",
        timeout=300,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    bo = out["bo"]
    for key in ("best", "reference_best", "gap", "evals_to_within_2pct", "random_gap", "tpe_gap"):
        assert key in bo
    assert bo["reference_trials"] == 4
    assert bo["fresh_seed_gap_median"] >= 0
    nsga2 = out["nsga2"]
    assert 0 <= nsga2["zdt1_hv_ratio"] <= 1.0  # three generations rarely reach the reference box
    assert len(nsga2["twin_hv_by_gen"]) == 1
    assert nsga2["front_size"] >= 1
    assert len(out["machine"]["load_before"]) == 3


def test_bench_tuning_names_a_bad_section_and_budget() -> None:
    res = cli("bench", "tuning", "--only", "bo,warp", timeout=180)
    assert res.returncode == 2
    assert "--only" in res.stderr
    res = cli("bench", "tuning", "--only", "bo", "--reference", "3", "--seeds", "2", "--budget", "2", timeout=180)
    assert res.returncode == 2
    assert "--reference" in res.stderr


def test_bench_tuning_times_dask_against_one_process() -> None:
    res = cli("bench", "tuning", "--only", "dask", "--candidates", "4", "--rounds", "1", "--json", timeout=300)
    assert res.returncode == 0, res.stderr
    dask = json.loads(res.stdout)["dask"]
    assert dask["same_results"] is True
    assert dask["candidates"] == 4
    assert len(dask["serial_s_by_round"]) == len(dask["dask_s_by_round"]) == 1
    for key in ("speedup", "serial_cores", "dask_cores", "serial_cpu_s", "dask_cpu_s"):
        assert dask[key] > 0
