"""The learned policy acts only while it is estimated to do better than the ladder."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from novacron.errors import InputError
from novacron.learning import FaultContext, LadderPolicy, Record, ThompsonPolicy
from novacron.learning.valuecheck import compare_to_ladder
from novacron.store import Store
from novacron.store.learning import PolicyLog
from tests.cli.runner import cli, controller, wait_for
from tests.learning.test_learning_cli import one_target_spec

ACTIONS = ["restart", "replace", "wait", "config_rollback"]
CRASH = FaultContext(kind="crash", detail="exited", host="ok")
BAD_CONFIG = FaultContext(kind="unhealthy", detail="bad_config", host="ok")


def _believer(context: FaultContext, best: str, *, worst: str = "restart") -> ThompsonPolicy:
    """A bandit that has learned (rightly or not) that ``best`` beats ``worst`` in ``context``."""
    policy = ThompsonPolicy(ACTIONS, ladder=["restart", "replace"], seed=1)
    for _ in range(30):
        policy.update(context, best, -1.0)
        policy.update(context, worst, -30.0)
    return policy


def _log(context: FaultContext, outcomes: dict[str, float], n: int) -> list[Record]:
    """``n`` logged decisions per action, taken with equal probability, each with its reward."""
    p = 1.0 / len(outcomes)
    return [Record(context, tuple(ACTIONS), a, p, r) for a, r in outcomes.items() for _ in range(n)]


def test_a_policy_better_than_the_ladder_on_the_log_is_used() -> None:
    learned = _believer(BAD_CONFIG, "config_rollback")
    log = _log(BAD_CONFIG, {"restart": -30.0, "config_rollback": -2.0}, 30)
    verdict = compare_to_ladder(log, learned, LadderPolicy(["restart", "replace"]), min_decisions=20)
    assert verdict.judged
    assert verdict.use_learned
    assert verdict.learned > verdict.ladder
    assert "better than the ladder" in verdict.reason


def test_a_policy_the_log_proves_wrong_is_not_used() -> None:
    """It believes waiting heals a crash; the logged outcomes of waiting say otherwise."""
    learned = _believer(CRASH, "wait")
    log = _log(CRASH, {"restart": -2.0, "wait": -30.0}, 30)
    verdict = compare_to_ladder(log, learned, LadderPolicy(["restart", "replace"]), min_decisions=20)
    assert verdict.judged
    assert not verdict.use_learned
    assert verdict.learned < verdict.ladder
    assert "not better than the ladder" in verdict.reason


def test_a_tie_within_the_margin_is_not_better() -> None:
    learned = _believer(CRASH, "restart", worst="wait")  # the ladder's own first step
    log = _log(CRASH, {"restart": -2.0, "wait": -30.0}, 30)
    verdict = compare_to_ladder(log, learned, LadderPolicy(["restart", "replace"]), min_decisions=20)
    assert verdict.judged
    assert not verdict.use_learned
    assert verdict.learned == verdict.ladder


def test_too_few_decisions_are_not_judged_and_bad_settings_are_refused() -> None:
    learned = _believer(CRASH, "wait")
    log = _log(CRASH, {"restart": -2.0, "wait": -30.0}, 5)
    verdict = compare_to_ladder(log, learned, LadderPolicy(["restart"]), min_decisions=50)
    assert not verdict.judged
    assert verdict.use_learned
    assert "too few" in verdict.reason
    with pytest.raises(InputError, match="min_decisions"):
        compare_to_ladder(log, learned, LadderPolicy(["restart"]), min_decisions=1)


def _seed_store(db: Path) -> None:
    """A promoted bandit that waits on crashes, and a log where waiting on a crash never healed."""
    store = Store.open(f"sqlite:///{db}")
    try:
        log = PolicyLog(store)
        log.save_policy("default", _believer(CRASH, "wait").state(), source="twin", now=time.time(), promote=True)
        for rec in _log(CRASH, {"restart": -2.0, "wait": -30.0}, 15):
            decision = log.record_decision(
                at=time.time(),
                policy="bandit",
                target="svc",
                incident_id=None,
                action_id=None,
                action=rec.action,
                context=rec.context.to_dict(),
                allowed=list(rec.allowed),
                propensity=rec.propensity,
                explored=True,
            )
            log.settle(decision, reward=rec.reward, outcome="verified" if rec.action == "restart" else "failed")
    finally:
        store.close()


def _fallbacks(db: Path) -> list[str]:
    store = Store.open(f"sqlite:///{db}")
    try:
        return [e.result for e in store.audit_log(limit=1000) if e.verb == "policy.fallback"]
    finally:
        store.close()


def _first_steps(db: Path) -> list[tuple[str, str]]:
    """(kind, reason) of each resolved incident's first action."""
    store = Store.open(f"sqlite:///{db}")
    try:
        out = []
        for inc in store.incidents():
            if inc.resolved_at is not None:
                first = store.actions(incident_id=inc.id)[-1].action
                out.append((first.kind.value, first.reason))
        return out
    finally:
        store.close()


def test_run_falls_back_to_the_ladder_when_the_learned_policy_is_estimated_worse(tmp_path: Path) -> None:
    spec = one_target_spec(
        tmp_path,
        faults=[{"at_s": 1.0, "target": "svc", "kind": "crash"}],
        learning_extra={"value_check": {"min_decisions": 20, "every": 5}},
    )
    db = tmp_path / "n.db"
    _seed_store(db)
    with controller(spec):
        said = wait_for(lambda: _fallbacks(db), "the controller's fallback in the audit trail", 30)
        steps = wait_for(lambda: _first_steps(db), "the crash healed", 30)
        res = cli("status", "-c", str(spec), "--json")
    assert said[0].startswith("using the ladder: learned policy not better than the ladder")
    kind, reason = steps[0]
    assert kind == "restart", "the ladder's step, not the learned policy's wait"
    assert "ladder chose restart" in reason
    assert "not better than the ladder" in reason, "the step's reason (on the timeline) says why"
    status = json.loads(res.stdout)["learning"]
    assert status["acting"] == "ladder"
    assert status["learner"] == "bandit"
    assert status["estimate"]["use_learned"] is False
    assert status["estimate"]["decisions"] >= 20
