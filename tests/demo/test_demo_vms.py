"""``novacron demo --vms``: two guests join the demo fleet, or a line says why they cannot."""

from __future__ import annotations

from pathlib import Path

import pytest

from novacron.demo.guests import guests_unavailable
from tests.cli.runner import cli


def test_without_qemu_the_demo_runs_without_guests_and_says_why(tmp_path: Path) -> None:
    env = {"NOVACRON_QEMU": "qemu-system-nowhere", "TMPDIR": str(tmp_path)}  # the demo's folder goes with tmp_path
    res = cli("demo", "--vms", "--duration", "2", env=env, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "--vms: the demo runs without guests: qemu-system-nowhere is not installed" in res.stdout
    assert "guests" not in res.stdout.split("demo summary", 1)[1]


@pytest.mark.timeout(480)
def test_two_guests_join_the_demo_and_are_healthy_at_its_end(tmp_path: Path) -> None:
    why = guests_unavailable()
    if why is not None:
        pytest.skip(why)
    # A guest boots in about 11 s under TCG on a busy machine (docs/vms.md): 60 s leaves
    # five times that.
    res = cli("demo", "--vms", "--duration", "60", "--rate", "0.1", env={"TMPDIR": str(tmp_path)}, timeout=420)
    assert res.returncode == 0, res.stderr
    summary = res.stdout.split("demo summary", 1)[1]
    assert "vm-a=healthy" in summary
    assert "vm-b=healthy" in summary
