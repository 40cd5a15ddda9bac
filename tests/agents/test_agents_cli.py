"""``novacron agents`` as a user types it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

NOVACRON = [sys.executable, "-m", "novacron.cli"]


def _spec(tmp_path: Path, extra: str = "") -> Path:
    spec = tmp_path / "fleet.yaml"
    spec.write_text(
        f"controller:\n  store_url: sqlite:///{tmp_path / 'n.db'}\n  workdir: {tmp_path / 'work'}\n"
        f"targets:\n  - name: web\n    command: [sleep, '60']\n{extra}",
        encoding="utf-8",
    )
    return spec


def test_agents_run_once_records_dry_runs(tmp_path: Path) -> None:
    proc = subprocess.run([*NOVACRON, "agents", "run", "-c", str(_spec(tmp_path)), "--json"],
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    outputs = json.loads(proc.stdout)["outputs"]
    assert {o["agent"] for o in outputs} == {"exhaustion", "capacity", "scaling", "circuit", "bugfix"}
    assert all(o["dry_run"] and not o["applied"] for o in outputs)


def test_bad_agent_names_exit_2(tmp_path: Path) -> None:
    proc = subprocess.run([*NOVACRON, "agents", "run", "-c", str(_spec(tmp_path)), "oracle"],
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert proc.returncode == 2
    assert "no agent 'oracle'" in proc.stderr
    bad = _spec(tmp_path, "agents:\n  agents:\n    exhaustion: {interval_s: -1}\n")
    proc = subprocess.run(
        [*NOVACRON, "agents", "run", "-c", str(bad)], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 2
    assert "agents.agents.exhaustion.interval_s" in proc.stderr
