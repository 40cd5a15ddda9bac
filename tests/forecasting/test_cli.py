"""The ``novacron forecast`` commands: tables and figures on good input, exit 2 with the
reason on bad input."""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from novacron.cli import app
from novacron.errors import InputError

from .conftest import make_fleet

runner = CliRunner()

pytestmark = pytest.mark.usefixtures("no_lstm")


def _csv(path: Path, values: np.ndarray, step: float = 300.0) -> Path:
    lines = ["timestamp,used"] + [f"{i * step:.0f},{v:.4f}" for i, v in enumerate(values)]
    path.write_text("\n".join(lines) + "\n")
    return path


def _seasonal(days: int) -> np.ndarray:
    x = np.arange(days * 24)
    noise = np.random.default_rng(0).normal(0, 1, x.size)
    return np.asarray(40 + 0.5 * x / 24 + 5 * np.sin(2 * np.pi * x / 24) + noise, dtype=np.float64)


def test_capacity_prints_a_table_and_writes_a_png(tmp_path: Path) -> None:
    csv = _csv(tmp_path / "u.csv", _seasonal(8), step=3600)
    out = tmp_path / "plan.png"
    args = ["forecast", "capacity", "--csv", str(csv), "--column", "used", "--capacity", "60"]
    args += ["--horizons", "1,2,4", "--interval-s", "3600", "--cost-per-unit", "100", "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "saturation" in result.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_exhaustion_reports_a_leak_and_draws_it(tmp_path: Path) -> None:
    y = 200 + 0.5 * np.arange(300) + np.random.default_rng(0).normal(0, 2, 300)
    csv = _csv(tmp_path / "rss.csv", y, step=60)
    out = tmp_path / "leak.png"
    args = ["forecast", "exhaustion", "--csv", str(csv), "--column", "used", "--limit", "1024"]
    result = runner.invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "leak" in result.output
    assert out.exists()


def test_exhaustion_without_leak_says_why(tmp_path: Path) -> None:
    y = 200 + np.random.default_rng(0).normal(0, 2, 300)
    csv = _csv(tmp_path / "rss.csv", y, step=60)
    result = runner.invoke(app, ["forecast", "exhaustion", "--csv", str(csv), "--column", "used", "--limit", "1024"])
    assert result.exit_code == 0, result.output
    assert "no exhaustion predicted" in result.output


def test_failures_trains_and_evaluates(tmp_path: Path) -> None:
    dd = make_fleet()
    path = tmp_path / "drives.csv.gz"
    with gzip.open(path, "wt") as fh:
        fh.write("date,serial_number,model,capacity_bytes,failure,smart_5_raw,smart_194_raw\n")
        for i in range(dd.day.size):
            day = np.datetime64("2013-04-10") + int(dd.day[i])
            fh.write(f"{day},S{dd.drive[i]},M1,3000000000000,{dd.failure[i]},{dd.smart[i, 0]:.0f},30\n")
    result = runner.invoke(app, ["forecast", "failures", "--data", str(path)])
    assert result.exit_code == 0, result.output
    assert "AUC-PR" in result.output
    assert "baseline" in result.output


@pytest.mark.parametrize(
    ("values", "extra", "message"),
    [
        (np.full(100, 7.0), ["--limit", "100"], "constant series"),
        (np.linspace(50, 150, 100), ["--limit", "100"], "already exhausted"),
        (np.linspace(1, 2, 100), ["--limit", "-1"], "limit"),
    ],
)
def test_bad_exhaustion_input_is_an_input_error(
    tmp_path: Path, values: np.ndarray, extra: list[str], message: str
) -> None:
    csv = _csv(tmp_path / "x.csv", values)
    result = runner.invoke(app, ["forecast", "exhaustion", "--csv", str(csv), "--column", "used", *extra])
    assert isinstance(result.exception, InputError)
    assert message in str(result.exception)


def test_bad_capacity_input_is_an_input_error(tmp_path: Path) -> None:
    csv = _csv(tmp_path / "x.csv", np.linspace(1, 2, 10))
    result = runner.invoke(app, ["forecast", "capacity", "--csv", str(csv), "--column", "used", "--capacity", "9"])
    assert isinstance(result.exception, InputError)
    assert "not enough history: need 288 points" in str(result.exception)
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp,used\n0,1\n300,abc\n")
    result = runner.invoke(app, ["forecast", "capacity", "--csv", str(bad), "--column", "used", "--capacity", "9"])
    assert isinstance(result.exception, InputError)
    assert "bad.csv:3 column used: not a number" in str(result.exception)


def test_command_line_exits_2_with_the_reason(tmp_path: Path) -> None:
    csv = _csv(tmp_path / "x.csv", np.linspace(50, 150, 100))
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "from novacron.cli import main; main()",
            "forecast",
            "exhaustion",
            "--csv",
            str(csv),
            "--column",
            "used",
            "--limit",
            "100",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert "already exhausted" in proc.stderr


@pytest.mark.parametrize(
    ("command", "flags", "message"),
    [
        ("capacity", ["--capacity", "0"], "--capacity: must be a finite number > 0, got 0.0"),
        ("capacity", ["--capacity", "9", "--cost-per-unit", "-5"], "--cost-per-unit: must be a finite number >= 0"),
        ("capacity", ["--capacity", "9", "--interval-s", "nan"], "--interval-s: must be a finite number > 0, got nan"),
        ("exhaustion", ["--limit", "inf"], "--limit: must be a finite number > 0, got inf"),
        ("exhaustion", ["--limit", "9", "--min-window-s", "-5"], "--min-window-s: must be a finite number >= 0"),
    ],
)
def test_a_bad_number_is_named_by_its_flag(tmp_path: Path, command: str, flags: list[str], message: str) -> None:
    csv = _csv(tmp_path / "x.csv", np.linspace(1, 2, 10))
    result = runner.invoke(app, ["forecast", command, "--csv", str(csv), "--column", "used", *flags])
    assert isinstance(result.exception, InputError)
    assert str(result.exception).startswith(message)


def test_failures_checks_its_flags_before_reading_the_data(tmp_path: Path) -> None:
    absent = str(tmp_path / "absent.csv")
    for flags, message in (
        (["--split", "random"], "--split: must be 'time' or 'drive', got 'random'"),
        (["--horizon-h", "0"], "--horizon-h: must be a finite number > 0, got 0.0"),
    ):
        result = runner.invoke(app, ["forecast", "failures", "--data", absent, *flags])
        assert isinstance(result.exception, InputError)
        assert str(result.exception) == message


def test_the_figure_goes_exactly_where_out_says_and_a_path_it_cannot_take_is_refused_first(tmp_path: Path) -> None:
    csv = _csv(tmp_path / "x.csv", np.linspace(50, 90, 300), step=60)
    base = ["forecast", "exhaustion", "--csv", str(csv), "--column", "used", "--limit", "100", "--out"]
    for bad, reason in ((tmp_path / "absent" / "leak.png", "No such file or directory"), (tmp_path, "Is a directory")):
        result = runner.invoke(app, [*base, str(bad)])
        assert isinstance(result.exception, InputError)
        assert str(result.exception) == f"--out {bad}: cannot write: {reason}"
    assert not (tmp_path / "absent").exists(), "a mistyped folder is not created"
    plain = tmp_path / "leak"  # no extension: written there, not to leak.png beside it
    result = runner.invoke(app, [*base, str(plain)])
    assert result.exit_code == 0, result.output
    assert plain.read_bytes().startswith(b"\x89PNG")
    assert not plain.with_suffix(".png").exists()
