"""``novacron tune`` and ``novacron evolve`` as a user runs them: results in the store, resumes, bad input."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from novacron.errors import NovacronError
from novacron.runtime.tuneproblem import build_problem
from novacron.settings import load_spec
from novacron.store import Store
from novacron.store.studies import StudyStore
from tests.cli.runner import NOVACRON, cli
from tests.tuning.conftest import cli_json, tuning_spec


def _studies(tmp_path: Path) -> StudyStore:
    return StudyStore(Store.open(f"sqlite:///{tmp_path / 'n.db'}"))


def test_tune_writes_the_study_and_its_trials(tmp_path: Path, spec_file: Path) -> None:
    out = cli_json("tune", "-c", str(spec_file), "--workers", "1")
    assert out["study"] == "shop-tune-gp"
    assert out["trials"] == 4
    best = out["best"]
    assert set(best["params"]) == {
        "targets.api.checks.0.interval_s",
        "targets.api.checks.0.failures",
        "twin.max_restarts",
    }
    assert "twin.max_restarts" not in best["promotable"]  # twin-only knobs are never promoted
    assert best["fresh_metrics"]["mttr_mean_s"] >= 0
    studies = _studies(tmp_path)
    try:
        row = studies.study("shop-tune-gp")
        assert row.status == "done"
        assert row.result["best"]["trial"] == best["trial"]
        trials = studies.trials("shop-tune-gp")
        assert [t.number for t in trials] == [0, 1, 2, 3]
        assert all(t.state == "complete" and t.value is not None for t in trials)
    finally:
        studies.store.close()


def test_a_killed_study_resumes_from_the_store(tmp_path: Path) -> None:
    # A budget the study cannot reach before the kill: twin trials take milliseconds, so a
    # small one may finish between two looks at the store.
    spec = tuning_spec(tmp_path, budget=100_000, method="random")
    proc = subprocess.Popen(
        [*NOVACRON, "tune", "-c", str(spec), "--workers", "1", "--json"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    studies = _studies(tmp_path)
    try:
        deadline = time.monotonic() + 180
        done: list[int] = []
        while time.monotonic() < deadline and len(done) < 3:
            time.sleep(0.2)
            if studies.study_or_none("shop-tune-random") is not None:
                done = [t.number for t in studies.trials("shop-tune-random") if t.state == "complete"]
        assert len(done) >= 3, "the study never got going"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        before = {t.number: t.params for t in studies.trials("shop-tune-random")}
        assert len(before) < 100_000
        out = cli_json("tune", "-c", str(spec), "--workers", "1", "--budget", str(len(before) + 2))
        assert out["resumed"] is True
        assert out["trials"] == len(before) + 2
        after = {t.number: t for t in studies.trials("shop-tune-random")}
        assert all(after[n].params == p for n, p in before.items())  # nothing asked twice differently
        assert all(t.state == "complete" for t in after.values())
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        studies.store.close()


def test_a_study_name_with_another_setup_is_refused(tmp_path: Path, spec_file: Path) -> None:
    cli_json("tune", "-c", str(spec_file), "--workers", "1", "--budget", "2", "--study", "s")
    res = cli(
        "tune", "-c", str(spec_file), "--workers", "1", "--budget", "2", "--study", "s", "--method", "tpe", timeout=180
    )
    assert res.returncode == 2
    assert "exists with another configuration" in res.stderr


BAD_BLOCKS: list[tuple[dict[str, Any], str]] = [
    ({"params": [{"path": "targets.api.checks.0.interval_s", "type": "log", "bounds": [40, 5]}]}, "tuning.params[0]"),
    (
        {"params": [{"path": "targets.web.checks.0.interval_s", "type": "log", "bounds": [5, 40]}]},
        "tuning.params[0].path",
    ),
    ({"params": [{"path": "policy.backoff.base_s", "bounds": [0.1, 5]}]}, "the twin cannot model"),
    ({"params": [{"path": "twin.warp_drive", "bounds": [0.1, 5]}]}, "no knob 'warp_drive'"),
    ({"objectives": {"latency_p99_ms": 1.0}}, "tuning.objectives.latency_p99_ms"),
    ({"constraints": ["availability > 0.9"]}, "tuning.constraints"),
    ({"params": [{"path": "targets.api.checks.0.interval_s", "type": "log", "bounds": [1, 40]}]}, "scenario.dt_s"),
    ({"scenario": {"kinds": ["crash", "meteor"]}}, "tuning.scenario.kinds[1]"),
]


@pytest.mark.parametrize(("block", "needle"), BAD_BLOCKS)
def test_bad_tuning_input_names_the_field(tmp_path: Path, block: dict[str, Any], needle: str) -> None:
    with pytest.raises(NovacronError) as err:
        build_problem(load_spec(tuning_spec(tmp_path, **block)))
    assert needle in str(err.value)


def test_bad_tuning_input_exits_2_on_the_cli(tmp_path: Path) -> None:
    res = cli("tune", "-c", str(tuning_spec(tmp_path, **BAD_BLOCKS[1][0])), "--workers", "1", timeout=180)
    assert res.returncode == 2
    assert "tuning.params[0].path" in res.stderr
    assert not (tmp_path / "n.db").exists()  # nothing was started or stored


def test_an_unreachable_dask_scheduler_is_named(spec_file: Path) -> None:
    res = cli("tune", "-c", str(spec_file), "--dask", "tcp://127.0.0.1:9", timeout=90)
    assert res.returncode == 2
    assert "tcp://127.0.0.1:9" in res.stderr


def test_failed_evaluations_are_recorded_failed_never_scored(tmp_path: Path) -> None:
    # memory_high above 1 is refused by the twin: those candidates fail, visibly.
    spec = tuning_spec(
        tmp_path,
        method="random",
        budget=6,
        params=[{"path": "twin.memory_high", "type": "float", "bounds": [0.5, 1.5]}],
    )
    out = cli_json("tune", "-c", str(spec), "--workers", "1")
    studies = _studies(tmp_path)
    try:
        trials = studies.trials("shop-tune-random")
    finally:
        studies.store.close()
    failed = [t for t in trials if t.state == "failed"]
    assert failed, "expected some candidates above 1.0"
    assert all(t.value is None and t.params["twin.memory_high"] > 1.0 for t in failed)
    assert all("memory_high" in t.detail for t in failed)
    assert out["failed"] == len(failed)
    assert out["best"]["params"]["twin.memory_high"] <= 1.0


def test_evolve_prints_a_front_and_draws_it(tmp_path: Path, spec_file: Path) -> None:
    # A plot path that cannot be written is refused before the search, not after it.
    absent = tmp_path / "absent" / "front.png"
    refused = cli("evolve", "-c", str(spec_file), "--workers", "1", "--study", "e0", "--plot", str(absent))
    assert refused.returncode == 2
    assert f"error: --plot {absent}: cannot write: No such file or directory" in refused.stderr
    before = _studies(tmp_path)
    try:
        assert "e0" not in {row.name for row in before.studies()}, "nothing was searched"
    finally:
        before.store.close()
    png = tmp_path / "front"  # no extension: drawn at this path
    out = cli_json("evolve", "-c", str(spec_file), "--workers", "1", "--study", "e1", "--plot", str(png))
    assert out["generations"] == 2
    assert len(out["hv_by_gen"]) == 2
    assert out["hv_by_gen"][1] >= out["hv_by_gen"][0]
    assert out["front_size"] == len(out["front"]) >= 1
    assert out["pick"] in out["front"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    studies = _studies(tmp_path)
    try:
        assert len(studies.trials("e1")) == 12  # 2 generations of 6 genomes
    finally:
        studies.store.close()
    res = cli("evolve", "-c", str(spec_file), "--workers", "1", "--study", "e1", "--json", timeout=180)
    assert res.returncode == 2
    assert "already exists" in res.stderr


def test_a_study_removed_while_evolve_writes_its_trials_fails_naming_the_row(tmp_path: Path, spec_file: Path) -> None:
    # The study goes (as if deleted from another session) as soon as its first trial is
    # written: a trigger in the store itself, so it happens at that moment every time.
    Store.open(f"sqlite:///{tmp_path / 'n.db'}").close()  # the tables, before the trigger on them
    with contextlib.closing(sqlite3.connect(tmp_path / "n.db")) as db:
        db.execute(
            "CREATE TRIGGER study_removed AFTER INSERT ON tune_trials WHEN NEW.number = 0 "
            "BEGIN DELETE FROM tune_studies WHERE name = NEW.study; END"
        )
        db.commit()
    res = cli("evolve", "-c", str(spec_file), "--workers", "1", "--study", "e1", timeout=180)
    assert res.returncode == 1, res.stderr
    assert "Traceback" not in res.stderr, res.stderr
    assert "sqlalchemy" not in res.stderr, res.stderr
    assert "tune_trials (study='e1', number=1)" in res.stderr, res.stderr
    assert "tune_studies.name='e1'" in res.stderr, res.stderr  # the row it needs, which is gone


def test_the_shipped_example_is_a_valid_tuning_problem() -> None:
    problem = build_problem(load_spec(Path(__file__).parents[2] / "examples" / "tuning.yaml"))
    assert problem.space.dims == 5
    assert problem.spec_paths() == [
        "targets.api.checks.0.interval_s",
        "targets.api.checks.0.failures",
        "targets.api.checks.0.timeout_s",
    ]
