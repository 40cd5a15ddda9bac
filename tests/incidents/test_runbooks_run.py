"""Runbooks in ``novacron run``: a matching runbook drives the repair through the one executor."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import yaml

from novacron.store import ActionRecord, Store
from tests.cli.runner import cli, cli_json, controller, service, spawn, stop, wait_for, write_spec

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


STEPS = """
name: retry-web
steps:
  - {name: first, action: restart, on_failure: next}
  - {name: second, action: restart, on_failure: next}
  - {name: hand-over, action: escalate}
"""


def _actions(tmp_path: Path) -> list[ActionRecord]:
    store = Store.open(f"sqlite:///{tmp_path / 'n.db'}")
    try:
        return store.actions()
    finally:
        store.close()


_IN_FLIGHT = [["planned"], ["applying"], ["applied"]]


def _statuses(tmp_path: Path) -> list[str]:
    return [a.status.value for a in sorted(_actions(tmp_path), key=lambda a: a.created_at)]


def test_a_controller_killed_mid_runbook_neither_repeats_nor_loses_a_step(tmp_path: Path) -> None:
    (tmp_path / "retry-web.yaml").write_text(STEPS)
    # Runs but never serves: each restart is applied, then fails its health verification.
    deaf = service("web", command=[sys.executable, "-c", "import time; time.sleep(600)"])
    spec = write_spec(tmp_path, deaf, verify_timeout_s=1.5, backoff={"base_s": 0.1, "cap_s": 60.0})
    data = yaml.safe_load(spec.read_text())
    data["runbooks"] = [{"path": "retry-web.yaml", "match": {"targets": ["web"]}}]
    spec.write_text(yaml.safe_dump(data))
    run = spawn(spec)
    try:
        # SIGKILL once the first step is over and the second one is in flight.
        wait_for(lambda: _statuses(tmp_path)[:1] == ["failed"] and _statuses(tmp_path)[1:] in _IN_FLIGHT, "step 2 runs")
        run.proc.send_signal(signal.SIGKILL)
        run.proc.wait(10)
        run = spawn(spec)
        store = Store.open(f"sqlite:///{tmp_path / 'n.db'}")
        try:
            incident = wait_for(lambda: store.open_incidents() and store.open_incidents()[0], "the incident")
            wait_for(lambda: any(e.kind == "runbook_finished" for e in store.timeline(incident.id)), "the end")
            events = store.timeline(incident.id)
        finally:
            store.close()
    finally:
        stop(run)
    actions = sorted(_actions(tmp_path), key=lambda a: a.created_at)
    keys = [a.action.idempotency_key for a in actions]
    assert keys == [f"{incident.id}/runbook/retry-web/1/first", f"{incident.id}/runbook/retry-web/2/second"]
    applied = [e.data.get("action_id") for e in events if e.kind == "action_started"]
    assert applied.count(actions[0].action.id) == 1  # the finished step was replayed, not run again
    assert applied.count(actions[1].action.id) == 1  # the one in flight was judged, not applied twice
    assert any(e.kind == "reconciled" and e.data.get("action_id") == actions[1].action.id for e in events), events
    finished = [e for e in events if e.kind == "runbook_finished"]
    assert [e.data["executed"] for e in finished] == [["first", "second", "hand-over"]]  # nothing lost: to its end
    assert any(e.kind == "escalated" and "retry-web" in e.detail for e in events), events


def test_a_runbook_the_kill_switch_held_runs_again_after_enable_across_a_restart(tmp_path: Path) -> None:
    (tmp_path / "restart-web.yaml").write_text(RUNBOOK)
    spec = _with_runbooks(tmp_path, [{"path": "restart-web.yaml", "match": {"targets": ["web"]}}])
    where = ["-c", str(spec)]
    store = Store.open(f"sqlite:///{tmp_path / 'n.db'}")
    run = spawn(spec)
    try:
        [proc] = wait_for(lambda: store.target_statuses() and store.processes(), "web running")
        wait_for(lambda: store.target_statuses()[0].health == "healthy", "web healthy")
        assert cli_json("disable", *where)["autonomous"] is False
        os.killpg(proc.pid, signal.SIGKILL)
        [incident] = wait_for(lambda: [i for i in store.incidents() if i.status.value == "needs_human"], "held")
        [held] = store.actions(incident_id=incident.id)
        assert held.status.value == "blocked"
        run.proc.send_signal(signal.SIGKILL)  # the controller dies while the runbook is held
        run.proc.wait(10)
        run = spawn(spec)
        assert cli_json("enable", *where)["autonomous"] is True
        wait_for(lambda: [i for i in store.incidents() if i.id == incident.id and i.resolved_at], "healed after enable")
        actions = store.actions(incident_id=incident.id)
    finally:
        stop(run)
        store.close()
    by_key = {a.action.idempotency_key: a.status.value for a in actions}
    # The enabled run acts under keys of its own; the held run's blocked step is not replayed for it.
    assert by_key == {
        f"{incident.id}/runbook/restart-web/1/restart": "blocked",
        f"{incident.id}/resumed-1/runbook/restart-web/1/restart": "verified",
    }
