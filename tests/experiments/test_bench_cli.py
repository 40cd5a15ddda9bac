"""`novacron bench experiments` as a user types it: one JSON object with the issue's figures."""

from __future__ import annotations

import json

from tests.cli.runner import cli


def test_bench_experiments_prints_aa_power_and_samples_vs_fixed() -> None:
    res = cli("bench", "experiments", "--experiments", "200", "--looks", "20", "--no-e2e", "--json", timeout=120)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert set(out["aa"]) >= {"fpr", "fpr_ci", "naive_fpr"}
    assert out["aa"]["experiments"] == 200
    assert out["aa"]["looks"] == 20
    assert out["aa"]["fpr"] <= out["aa"]["naive_fpr"]
    assert set(out["power"]) == {"error_ratio", "latency_p95"}
    assert set(out["samples_vs_fixed"]) == {"error_ratio", "latency_p95"}


def test_bench_experiments_names_a_bad_option() -> None:
    res = cli("bench", "experiments", "--experiments", "5")
    assert res.returncode == 2
    assert "--experiments" in res.stderr
