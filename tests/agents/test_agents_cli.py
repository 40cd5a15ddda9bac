"""``novacron agents`` as a user types it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from novacron.store import Store

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
    # Nothing ran here yet: no store to read, and none is created.
    proc = subprocess.run([*NOVACRON, "agents", "run", "-c", str(_spec(tmp_path))],
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert proc.returncode == 3, proc.stderr
    assert f"no store at {tmp_path / 'n.db'}: no controller has run here" in proc.stderr
    assert not (tmp_path / "n.db").exists()
    Store.open(f"sqlite:///{tmp_path / 'n.db'}").close()
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
    off = _spec(tmp_path, "agents:\n  agents:\n    exhaustion: {enabled: false}\n")
    proc = subprocess.run(
        [*NOVACRON, "agents", "run", "-c", str(off), "exhaustion"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2, "a disabled agent asked for by name is refused, not silently skipped"
    assert "error: NAME: 'exhaustion' is disabled in the spec (agents.agents.exhaustion.enabled: false)" in proc.stderr
