"""Logging set up while a command ran with a borrowed stderr keeps working after it returns."""

from __future__ import annotations

import contextlib
import io

import pytest
from typer.testing import CliRunner

from novacron.cli import app
from novacron.telemetry import configure_logging, get_logger


def test_a_logger_set_up_under_a_borrowed_stderr_writes_to_the_current_one(capsys: pytest.CaptureFixture[str]) -> None:
    borrowed = io.StringIO()
    with contextlib.redirect_stderr(borrowed):
        configure_logging()
    borrowed.close()  # as a test runner's invoker closes the stderr it lent a command
    get_logger(component="t").info("after the command")
    assert "after the command" in capsys.readouterr().err


def test_a_bench_run_in_process_leaves_logging_usable(capsys: pytest.CaptureFixture[str]) -> None:
    out = CliRunner().invoke(app, ["bench", "probes", "--targets", "0", "--json"])
    assert out.exit_code == 2
    get_logger(component="t").info("still logging")
    assert "still logging" in capsys.readouterr().err
