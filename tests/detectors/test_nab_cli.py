"""`novacron nab run|score` on a small slice of NAB, and clear errors for malformed input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from novacron.cli import app
from novacron.errors import InputError

NAB = Path(__file__).resolve().parents[3] / "shared" / "data" / "nab"
FILES = ["realTraffic/speed_7578.csv", "artificialWithAnomaly/art_daily_jumpsup.csv"]
runner = CliRunner()


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """Two NAB files with their labels, in NAB's folder layout."""
    if not NAB.is_dir():
        pytest.skip("NAB reference data not present")
    root = tmp_path / "nab"
    for rel in FILES:
        (root / "data" / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(NAB / "data" / rel, root / "data" / rel)
    labels = json.loads((NAB / "labels" / "combined_windows.json").read_text())
    (root / "labels").mkdir()
    (root / "labels" / "combined_windows.json").write_text(json.dumps({k: labels[k] for k in FILES}))
    shutil.copy(NAB / "profiles.json", root / "profiles.json")
    return root


def test_run_then_score(corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "results"
    res = runner.invoke(app, ["nab", "run", "--data", str(corpus / "data"), "--out", str(out)])
    assert res.exit_code == 0, res.output
    for rel in FILES:
        src = (corpus / "data" / rel).read_text().splitlines()
        got = (out / rel).read_text().splitlines()
        assert got[0] == "timestamp,value,anomaly_score"
        assert len(got) == len(src)
        assert [g.rsplit(",", 1)[0] for g in got[1:]] == src[1:]  # same rows, same order
        assert all(0.0 <= float(g.rsplit(",", 1)[1]) <= 1.0 for g in got[1:])
    res = runner.invoke(app, ["nab", "score", "--data", str(corpus), "--results", str(out), "--json"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.output)
    for block in ("optimised", "default_threshold"):
        assert set(report[block]) >= {"standard", "reward_low_FP_rate", "reward_low_FN_rate", "threshold"}
    assert report["optimised"]["standard"] >= report["default_threshold"]["standard"] - 1e-9
    assert set(report["per_file"]) == set(FILES)


def test_other_detectors_are_squashed_into_unit_range(corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "z"
    res = runner.invoke(app, ["nab", "run", "--data", str(corpus / "data"), "--out", str(out), "--detector", "zscore"])
    assert res.exit_code == 0, res.output
    meta = json.loads((out / "run.json").read_text())
    assert meta == {"detector": "zscore", "threshold": pytest.approx(0.8)}


def _error(args: list[str]) -> str:
    res = runner.invoke(app, args)
    assert isinstance(res.exception, InputError), res.output
    return str(res.exception)


def test_malformed_csv_names_file_and_row(tmp_path: Path) -> None:
    data = tmp_path / "d"
    data.mkdir()
    (data / "bad.csv").write_text("timestamp,value\n2015-01-01 00:00:00,1\n2015-01-01 00:05:00,abc\n")
    msg = _error(["nab", "run", "--data", str(data), "--out", str(tmp_path / "o")])
    assert "bad.csv:3" in msg
    assert "abc" in msg
    (data / "bad.csv").write_text("time,val\n1,2\n")
    assert "bad.csv:1" in _error(["nab", "run", "--data", str(data), "--out", str(tmp_path / "o")])
    (data / "bad.csv").write_text("timestamp,value\nyesterday,2\n")
    assert "bad.csv:2" in _error(["nab", "run", "--data", str(data), "--out", str(tmp_path / "o")])


def test_unknown_detector_and_missing_folders_are_named(corpus: Path, tmp_path: Path) -> None:
    assert "nope" in _error(
        ["nab", "run", "--data", str(corpus / "data"), "--out", str(tmp_path), "--detector", "nope"]
    )
    assert "missing" in _error(["nab", "run", "--data", str(tmp_path / "missing"), "--out", str(tmp_path)])


def test_score_rejects_results_that_do_not_match(corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "results"
    runner.invoke(app, ["nab", "run", "--data", str(corpus / "data"), "--out", str(out)])
    short = out / FILES[0]
    short.write_text("\n".join(short.read_text().splitlines()[:-3]) + "\n")
    assert FILES[0].split("/")[1] in _error(["nab", "score", "--data", str(corpus), "--results", str(out)])
    (corpus / "labels" / "combined_windows.json").write_text("{not json")
    assert "combined_windows.json" in _error(["nab", "score", "--data", str(corpus), "--results", str(out)])


def test_streaming_run_writes_the_same_scores(corpus: Path, tmp_path: Path) -> None:
    batch, stream = tmp_path / "b", tmp_path / "s"
    for out, extra in ((batch, []), (stream, ["--streaming"])):
        res = runner.invoke(app, ["nab", "run", "--data", str(corpus / "data"), "--out", str(out), *extra])
        assert res.exit_code == 0, res.output
    for rel in FILES:
        assert (batch / rel).read_text() == (stream / rel).read_text()
