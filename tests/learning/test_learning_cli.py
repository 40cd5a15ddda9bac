"""The learning policy from the command line: learn on the twin, heal with it, mark its actions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from novacron.store import Store
from novacron.store.learning import PolicyLog
from tests.cli.runner import cli, controller, wait_for


def one_target_spec(
    tmp_path: Path,
    *,
    faults: list[dict[str, Any]],
    mix: dict[str, float] | None = None,
    learning_extra: dict[str, Any] | None = None,
) -> Path:
    """One sim target, a learning policy that takes its best estimate (no exploration)."""
    check = {"type": "http", "url": "http://twin/health", "interval_s": 0.1, "timeout_s": 0.25, "failures": 2}
    spec = {
        "name": "learn-test",
        "policy": {"verify_timeout_s": 1.0, "backoff": {"base_s": 0.05, "cap_s": 0.5}},
        "controller": {"store_url": f"sqlite:///{tmp_path / 'n.db'}", "workdir": str(tmp_path / "work")},
        "twin": {"restart_s": 0.2, "replace_s": 0.3, "dt_s": 0.05, "faults": faults, "fault_mix": mix or {}},
        "learning": {"enabled": True, "learner": "bandit", "explore": False, "seed": 1, **(learning_extra or {})},
        "targets": [{"name": "svc", "kind": "sim", "checks": [check], "start_timeout_s": 10.0}],
    }
    path = tmp_path / "fleet.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _steps(db: Path) -> list[list[tuple[str, str]]]:
    """Per resolved incident (oldest first): its actions (id, kind), first step first."""
    store = Store.open(f"sqlite:///{db}")
    try:
        out = []
        for inc in reversed(store.incidents()):
            if inc.resolved_at is not None:
                acts = reversed(store.actions(incident_id=inc.id))
                out.append([(str(a.action.id), a.action.kind.value) for a in acts])
        return out
    finally:
        store.close()


def test_a_policy_learned_on_the_twin_heals_a_bad_config_with_a_rollback(tmp_path: Path) -> None:
    spec = one_target_spec(
        tmp_path, faults=[{"at_s": 1.0, "target": "svc", "kind": "bad_config"}], mix={"bad_config": 1.0}
    )
    res = cli("learn", "--spec", str(spec), "--episodes", "8", "--json", timeout=240)
    assert res.returncode == 0, res.stderr
    learned = json.loads(res.stdout)
    assert learned["version"] == 1
    assert learned["kinds"] == ["bad_config"] or "bad_config" in learned["kinds"]
    with controller(spec):
        steps = wait_for(lambda: _steps(tmp_path / "n.db"), "the bad config healed", 30)
    assert steps[0][0][1] == "config_rollback", "the learned first step, not the ladder's restart"
    store = Store.open(f"sqlite:///{tmp_path / 'n.db'}")
    try:
        decisions = PolicyLog(store).decisions()
    finally:
        store.close()
    first = decisions[0]
    assert first.action == "config_rollback"
    assert first.action in first.allowed
    assert first.context["detail"] == "bad_config"
    assert first.reward is not None


def test_operator_feedback_changes_the_next_choice(tmp_path: Path) -> None:
    faults = [{"at_s": 1.0, "target": "svc", "kind": "crash"}, {"at_s": 25.0, "target": "svc", "kind": "crash"}]
    spec = one_target_spec(tmp_path, faults=faults)
    db = tmp_path / "n.db"
    with controller(spec):
        first = wait_for(lambda: _steps(db), "the first crash healed", 30)[0]
        action_id, kind = first[0]
        assert kind == "restart", "an untrained policy starts from the ladder"
        for _ in range(2):
            res = cli("feedback", action_id, "bad", "--note", "restarts hide the cause", "-c", str(spec), "--json")
            assert res.returncode == 0, res.stderr
            assert json.loads(res.stdout)["learned"] is True
        second = wait_for(lambda: _steps(db)[1:], "the second crash healed", 60)[0]
    assert second[0][1] == "replace", "two bad marks on restart move the next choice"
    store = Store.open(f"sqlite:///{db}")
    try:
        marks = PolicyLog(store).feedback(action_id)
        audit = [e for e in store.audit_log() if e.verb == "action.feedback"]
    finally:
        store.close()
    assert [m.verdict for m in marks] == ["bad", "bad"]
    assert marks[0].note == "restarts hide the cause"
    assert audit
    assert audit[0].subject == action_id


def test_feedback_on_an_unknown_action_or_verdict_is_bad_input(tmp_path: Path) -> None:
    spec = one_target_spec(tmp_path, faults=[])
    with controller(spec):
        # A healthy sim target counts its VM as running (it has no process to count: it showed 0/1).
        wait_for(lambda: _svc(spec)["state"] == "healthy", "svc healthy")
        assert (_svc(spec)["running"], _svc(spec)["desired"]) == (1, 1)
        res = cli("feedback", "act-nope", "bad", "-c", str(spec))
        assert res.returncode == 2
        assert "act-nope" in res.stderr
        res = cli("feedback", "act-nope", "meh", "-c", str(spec))
        assert res.returncode == 2
        assert "VERDICT" in res.stderr
    store = Store.open(f"sqlite:///{tmp_path / 'n.db'}")
    try:
        assert PolicyLog(store).feedback() == [], "nothing written for a refused mark"
    finally:
        store.close()


def _svc(spec: Path) -> dict[str, Any]:
    """The sim target's row of `novacron status --json`."""
    res = cli("status", "-c", str(spec), "--json")
    [row] = [t for t in json.loads(res.stdout)["targets"] if t["name"] == "svc"]
    return dict(row)


def test_an_unknown_learner_is_refused_naming_the_field(tmp_path: Path) -> None:
    spec = one_target_spec(tmp_path, faults=[])
    data = yaml.safe_load(spec.read_text())
    data["learning"]["learner"] = "dqn-9000"
    spec.write_text(yaml.safe_dump(data))
    res = cli("run", "-c", str(spec))
    assert res.returncode == 2
    assert "learning.learner" in res.stderr


def test_learning_for_a_real_fleet_that_never_ran_says_so(tmp_path: Path) -> None:
    # A process fleet's twin is timed from its store: without one there is nothing to time it by.
    spec = one_target_spec(tmp_path, faults=[])
    data = yaml.safe_load(spec.read_text())
    data["targets"] = [{"name": "svc", "command": ["sleep", "60"]}]
    del data["twin"]
    spec.write_text(yaml.safe_dump(data))
    # --config as every other command names the spec (--spec and -c too).
    res = cli("learn", "--config", str(spec), "--episodes", "5")
    assert res.returncode == 3, res.stderr
    assert f"no store at {tmp_path / 'n.db'}: no controller has run here" in res.stderr
    assert not (tmp_path / "n.db").exists()
