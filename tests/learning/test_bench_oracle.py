"""``novacron bench learning``: the per-kind table and the oracle reference, on a small run."""

from __future__ import annotations

import json

from novacron.runtime.training import LEARNING_KINDS
from tests.cli.runner import cli

_STEPS = ["restart", "replace", "config_rollback"]


def test_bench_learning_reports_each_kind_and_the_best_fixed_first_step() -> None:
    argv = ["bench", "learning", "--faults", "12", "--eval-faults", "12", "--no-dqn", "--actions", ",".join(_STEPS)]
    res = cli(*argv, "--json", timeout=600)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    oracle = out["oracle"]
    assert set(oracle["first_action"]) == set(LEARNING_KINDS)
    assert set(oracle["first_action"].values()) <= set(_STEPS)
    for kind in LEARNING_KINDS:
        tried = oracle["kinds"][kind]["tried"]
        assert set(tried) == set(_STEPS), "every allowed first step was tried on every kind"
        best = oracle["first_action"][kind]
        assert oracle["kinds"][kind]["success"] == max(row["success"] or 0.0 for row in tried.values())
        assert oracle["kinds"][kind]["mttr_p50_s"] == tried[best]["mttr_p50_s"]
        assert set(out["by_kind"][kind]) == {"ladder", "bandit", "oracle"}  # no dqn: --no-dqn
        for row in out["by_kind"][kind].values():
            assert {"mttr_p50_s", "mttr_p95_s", "success", "first_action"} <= set(row)
    # The ladder never rolls a configuration back: it restarts first and never heals a bad one.
    assert out["by_kind"]["bad_config"]["ladder"]["first_action"] == "restart"
    assert out["oracle"]["first_action"]["bad_config"] == "config_rollback"
    assert out["by_kind"]["bad_config"]["oracle"]["success"] == 1.0
    # Same definition as the headline figure: one minus the p50 ratio against the ladder's.
    lp50 = out["ladder"]["mttr_s"]["p50"]
    assert oracle["mttr_reduction_vs_ladder"] == round(1.0 - oracle["mttr_s"]["p50"] / lp50, 3)
    assert oracle["success"] >= out["ladder"]["success"]
    # The mean beside it, same definition.
    lmean, bmean = out["ladder"]["mttr_s"]["mean"], out["bandit"]["mttr_s"]["mean"]
    assert out["mttr_mean_reduction_vs_ladder"] == round(1.0 - bmean / lmean, 3)
    assert oracle["safety"]["outside_allowed"] == 0


def test_bench_learning_without_the_oracle_says_so() -> None:
    argv = ["bench", "learning", "--faults", "10", "--eval-faults", "10", "--no-dqn", "--no-oracle", "--json"]
    res = cli(*argv, "--actions", "restart,config_rollback", timeout=600)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["oracle"] == {"skipped": "--no-oracle"}
    assert set(out["by_kind"]["crash"]) == {"ladder", "bandit"}
