"""``novacron demo --vms``: two guests join the demo fleet, or a line says why they cannot."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from sqlalchemy.exc import SQLAlchemyError

from novacron.api.status_view import fleet_status
from novacron.demo.guests import guests_unavailable
from novacron.errors import NovacronError
from novacron.store import Store
from tests.cli.runner import NOVACRON, cli, wait_for


def test_without_qemu_the_demo_runs_without_guests_and_says_why(tmp_path: Path) -> None:
    env = {"NOVACRON_QEMU": "qemu-system-nowhere", "TMPDIR": str(tmp_path)}  # the demo's folder goes with tmp_path
    res = cli("demo", "--vms", "--duration", "2", env=env, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "--vms: the demo runs without guests: qemu-system-nowhere is not installed" in res.stdout
    assert "guests" not in res.stdout.split("demo summary", 1)[1]


def _guests_healthy(tmp_path: Path) -> bool:
    """Whether the demo's store (in its folder under ``tmp_path``) records both guests healthy."""
    dbs = list(tmp_path.glob("novacron-demo-*/novacron.db"))
    if not dbs:
        return False
    try:  # the demo may be laying out its store right now: then ask again
        store = Store.open(f"sqlite:///{dbs[0]}")
        try:
            states = {t.name: t.state for t in fleet_status(store, now=time.time()).targets}
        finally:
            store.close()
    except (SQLAlchemyError, NovacronError):
        return False
    return states.get("vm-a") == "healthy" and states.get("vm-b") == "healthy"


@pytest.mark.timeout(480)
def test_two_guests_join_the_demo_and_are_healthy_at_its_end(tmp_path: Path) -> None:
    why = guests_unavailable()
    if why is not None:
        pytest.skip(why)
    # The demo is stopped (SIGTERM, as Ctrl-C) as soon as its store has both guests healthy,
    # instead of running out a fixed duration: a guest boots in about 11 s under TCG on a
    # busy machine (docs/vms.md), and the wait allows far more than that.
    out, err = tmp_path / "demo.out", tmp_path / "demo.err"
    with out.open("w") as stdout, err.open("w") as stderr:
        proc = subprocess.Popen(
            [*NOVACRON, "demo", "--vms", "--duration", "400", "--rate", "0.1"],
            stdout=stdout,
            stderr=stderr,
            text=True,
            env={**{k: v for k, v in os.environ.items() if k != "NOVACRON_TOKEN"}, "TMPDIR": str(tmp_path)},
        )
    try:
        wait_for(lambda: _guests_healthy(tmp_path) or proc.poll() is not None, "both guests healthy", timeout=300)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) == 0, err.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    summary = out.read_text().split("demo summary", 1)[1]
    assert "vm-a=healthy" in summary
    assert "vm-b=healthy" in summary
