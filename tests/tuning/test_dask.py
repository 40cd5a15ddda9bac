"""Candidates evaluated on a real Dask cluster: a scheduler and two workers on loopback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.runner import cli_json
from tests.tuning.conftest import tuning_spec

DASK = str(Path(sys.executable).parent / "dask")


@pytest.fixture
def scheduler(tmp_path: Path) -> Iterator[str]:
    """A ``dask scheduler`` and two ``dask worker`` processes; yields the scheduler address."""
    info = tmp_path / "scheduler.json"
    common = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "start_new_session": True, "cwd": tmp_path}
    procs = [
        subprocess.Popen(
            [DASK, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard", "--scheduler-file", str(info)],
            **common,  # type: ignore[call-overload]
        )
    ]
    try:
        deadline = time.monotonic() + 60
        while not info.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        address = json.loads(info.read_text())["address"]
        for _ in range(2):
            procs.append(
                subprocess.Popen(
                    [DASK, "worker", address, "--nthreads", "1", "--no-dashboard", "--host", "127.0.0.1"],
                    **common,  # type: ignore[call-overload]
                )
            )
        yield address
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=10)


def test_tuning_on_dask_matches_tuning_here(tmp_path: Path, scheduler: str) -> None:
    here, there = tmp_path / "here", tmp_path / "there"
    here.mkdir()
    there.mkdir()
    local = cli_json("tune", "-c", str(tuning_spec(here, method="random", budget=3)), "--workers", "1")
    remote = cli_json("tune", "-c", str(tuning_spec(there, method="random", budget=3)), "--dask", scheduler)
    # Common random numbers: the same candidates score the same wherever they run.
    assert remote["best"]["params"] == local["best"]["params"]
    assert remote["best"]["value"] == pytest.approx(local["best"]["value"])
    assert remote["failed"] == 0
