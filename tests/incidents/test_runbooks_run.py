"""Runbooks in ``novacron run``: a matching runbook drives the repair through the one executor."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import yaml

from novacron.store import Store
from tests.cli.runner import cli, controller, service, wait_for, write_spec

RUNBOOK = """
name: restart-web
match: {kinds: [crash]}
steps:
  - {name: restart, action: restart, on_failure: escalate}
"""


def _with_runbooks(tmp_path: Path, entries: list[dict[str, object]]) -> Path:
    path = write_spec(tmp_path, service("web"), verify_timeout_s=5)
    spec = yaml.safe_load(path.read_text())
    spec["runbooks"] = entries
    path.write_text(yaml.safe_dump(spec))
    return path


def test_a_matching_runbook_heals_through_the_executor(tmp_path: Path) -> None:
    (tmp_path / "restart-web.yaml").write_text(RUNBOOK)
    spec = _with_runbooks(tmp_path, [{"path": "restart-web.yaml", "match": {"targets": ["web"]}}])
    store = Store.open(f"sqlite:///{tmp_path / 'n.db'}")
    try:
        with controller(spec):
            [proc] = wait_for(lambda: store.target_statuses() and store.processes(), "web running")
            wait_for(lambda: store.target_statuses()[0].health == "healthy", "web healthy")
            os.killpg(proc.pid, signal.SIGKILL)
            [incident] = wait_for(lambda: [i for i in store.incidents() if i.resolved_at], "the incident resolved")
        events = store.timeline(incident.id)
        kinds = [e.kind for e in events]
        assert kinds.index("runbook_started") < kinds.index("runbook_finished") < kinds.index("resolved")
        finished = next(e for e in events if e.kind == "runbook_finished")
        assert finished.data["status"] == "succeeded"
        [action] = store.actions(incident_id=incident.id)
        assert action.action.requested_by == "runbook:restart-web"
        assert action.status.value == "verified"
        assert "runbook restart-web succeeded" in events[-1].detail
    finally:
        store.close()


def test_a_runbook_that_does_not_parse_stops_validate_and_run(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("name: bad\nsteps:\n  - {name: x, action: teleport}\n")
    spec = _with_runbooks(tmp_path, [{"path": "bad.yaml"}])
    for command in ("validate", "run"):
        res = cli(command, "-c", str(spec), timeout=30)
        assert res.returncode == 2, res.stderr
        assert "runbooks[0].path" in res.stderr
    assert not (tmp_path / "n.db").exists()
