"""Leave-one-category-out cross-validation: no label leaks into its own fold, clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from novacron.cli import app
from novacron.detectors.base import FloatArray
from novacron.detectors.nab_cv import Case, category_folds, cross_validate
from novacron.detectors.nab_fast import FilePlan
from novacron.errors import InputError

runner = CliRunner()
_N = 400


def _case(cat: str, name: str, spikes: list[int], windows: list[tuple[int, int]], seed: int) -> Case:
    rng = np.random.default_rng(seed)
    x = rng.normal(10.0, 1.0, _N)
    for s in spikes:
        x[s] += 12.0
    return Case(f"{cat}/{name}.csv", x, 300.0, tuple(windows))


def _corpus(shift_b: int = 0) -> list[Case]:
    """Three categories; ``shift_b`` moves category b's label windows (its labels only)."""
    cases = []
    for k, cat in enumerate(("a", "b", "c")):
        for j in range(2):
            spike = 150 + 60 * j + 20 * k
            win = (spike - 20, spike + 20)
            if cat == "b":
                win = (win[0] + shift_b, win[1] + shift_b)
            cases.append(_case(cat, f"f{j}", [spike, spike + 100], [win], seed=10 * k + j))
    return cases


def _scorer(name: str, case: Case) -> FloatArray:
    """Two candidate 'detectors' that disagree: one sees spikes early, one late."""
    z = np.abs(case.values - 10.0) / 12.0
    lag = 0 if name == "early" else 15
    return np.asarray(np.clip(np.concatenate([np.zeros(lag), z[: _N - lag]]), 0.0, 1.0), dtype=np.float64)


def test_folds_never_train_on_the_held_out_category() -> None:
    cases = _corpus()
    for cat, train, test in category_folds(cases):
        assert {cases[i].category for i in test} == {cat}
        assert cat not in {cases[i].category for i in train}
        assert sorted(train + test) == list(range(len(cases)))


def test_a_categorys_own_labels_never_reach_its_settings() -> None:
    cands = {"early": (0, 20), "late": (0, 20)}
    before = cross_validate(_corpus(), cands, _scorer)
    after = cross_validate(_corpus(shift_b=120), cands, _scorer)  # b's labels moved far away
    keys = ("candidate", "hold", "threshold", "train_standard")
    assert {k: before.by_category["b"][k] for k in keys} == {k: after.by_category["b"][k] for k in keys}
    assert before.by_category["b"]["standard"] != after.by_category["b"]["standard"], "b is scored on its labels"
    # The other folds trained on b's labels, so they may choose differently; the final
    # choice (on everything) sees them too.
    assert before.pooled["standard"] != after.pooled["standard"]


def test_pooled_score_adds_the_held_out_categories() -> None:
    res = cross_validate(_corpus(), {"early": (0,)}, _scorer)
    assert res.pooled["windows"] == sum(v["windows"] for v in res.by_category.values()) == 6
    assert set(res.pooled) >= {"standard", "reward_low_FP_rate", "reward_low_FN_rate", "threshold"}


def test_fast_plan_matches_hand_computed_tp_credit() -> None:
    plan = FilePlan(1000, [(200, 299)])
    detected = np.zeros(1000, dtype=bool)
    detected[249] = True  # half-way: p = -(299 - 249 + 1)/100 = -0.51
    tally = plan.tally(detected)
    sigma = 2 / (1 + np.exp(5 * -0.51)) - 1
    assert tally.credit == pytest.approx(sigma / (2 / (1 + np.exp(-5)) - 1))
    assert tally.false_positives == 0


def test_one_category_cannot_be_held_out() -> None:
    with pytest.raises(InputError, match="two categories"):
        category_folds([_case("a", "f", [100], [(90, 110)], 1)])


def _write_corpus(root: Path, categories: dict[str, int]) -> Path:
    start = datetime(2024, 1, 1)
    labels: dict[str, list[list[str]]] = {}
    for k, (cat, files) in enumerate(categories.items()):
        folder = root / "data" / cat
        folder.mkdir(parents=True)
        for j in range(files):
            case = _case(cat, f"f{j}", [300], [(280, 320)], seed=k * 7 + j)
            stamps = [start + timedelta(minutes=5 * i) for i in range(_N)]
            rows = [f"{t:%Y-%m-%d %H:%M:%S},{v:.4f}" for t, v in zip(stamps, case.values, strict=True)]
            (folder / f"f{j}.csv").write_text("timestamp,value\n" + "\n".join(rows) + "\n")
            labels[f"{cat}/f{j}.csv"] = [[f"{stamps[280]:%Y-%m-%d %H:%M:%S}", f"{stamps[320]:%Y-%m-%d %H:%M:%S}"]]
    (root / "labels").mkdir()
    (root / "labels" / "combined_windows.json").write_text(json.dumps(labels))
    return root


def test_cli_reports_pooled_and_per_category_scores(tmp_path: Path) -> None:
    root = _write_corpus(tmp_path / "nab", {"alpha": 1, "beta": 1})
    res = runner.invoke(app, ["nab", "cv", "--data", str(root), "--json"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.output)
    assert set(report["pooled"]) >= {"standard", "reward_low_FP_rate", "reward_low_FN_rate", "threshold"}
    assert set(report["by_category"]) == {"alpha", "beta"}
    assert report["final"]["candidate"] == "zhc+rank"


def test_cli_names_an_empty_category(tmp_path: Path) -> None:
    root = _write_corpus(tmp_path / "nab", {"alpha": 1, "beta": 1})
    (root / "data" / "gamma").mkdir()
    res = subprocess.run(
        [sys.executable, "-m", "novacron.cli", "nab", "cv", "--data", str(root), "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode == 2, res.stderr
    assert "category 'gamma' has no CSV files" in res.stderr


def test_cli_names_a_bad_candidate(tmp_path: Path) -> None:
    root = _write_corpus(tmp_path / "nab", {"alpha": 1, "beta": 1})
    res = runner.invoke(app, ["nab", "cv", "--data", str(root), "--candidates", "zq+rank"])
    assert isinstance(res.exception, InputError)
    assert "--candidates" in str(res.exception)
