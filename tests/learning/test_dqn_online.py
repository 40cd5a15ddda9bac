"""A promoted DQN keeps learning from the controller's real outcomes (the ``ml`` extra)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from novacron.learning import DqnPolicy, FaultContext
from novacron.learning.context import n_features
from novacron.runtime.dqnonline import transitions
from novacron.store import Store
from novacron.store.learning import DecisionRow, PolicyLog, StoredPolicy
from tests.cli.runner import controller, wait_for
from tests.learning.test_learning_cli import one_target_spec

ACTIONS = ["restart", "replace", "wait", "config_rollback"]


def _row(n: int, incident: str, action: str, outcome: str, *, tried: tuple[str, ...] = ()) -> DecisionRow:
    ctx = FaultContext(kind="crash", detail="exited", tried=tried).to_dict()
    return DecisionRow(
        f"d{n}", float(n), "dqn", "svc", incident, f"act-{n}", action, ctx, ACTIONS, 1.0, False, -2.0, outcome
    )


def test_an_incidents_steps_become_transitions_once_their_successor_is_known() -> None:
    rows = [
        _row(1, "i1", "wait", "failed"),
        _row(2, "i1", "restart", "verified", tried=("wait",)),
        _row(3, "i2", "wait", "failed"),  # i2 is still open: its next step is to come
        _row(4, "i3", "replace", "failed"),  # i3 closed (a human took it): the episode ended
    ]
    marks = {"act-2": 20.0}  # an operator marked the restart good
    out = {t.decision_id: t for t in transitions(rows, ACTIONS, is_open=lambda i: i == "i2", marks=marks)}
    assert set(out) == {"d1", "d2", "d4"}
    assert not out["d1"].done
    assert out["d1"].action == ACTIONS.index("wait")
    assert out["d1"].next_obs[1:].any(), "the next observation is the next step's context"
    assert out["d2"].done
    assert out["d2"].reward == 18.0, "the step's reward plus the operator's mark"
    assert out["d1"].reward == -2.0
    assert not out["d2"].next_obs.any()
    assert out["d4"].done


def _random_dqn() -> DqnPolicy:
    rng = np.random.default_rng(3)
    layers = [
        (rng.normal(0, 0.3, (16, n_features())), np.zeros(16)),
        (rng.normal(0, 0.3, (16, 16)), np.zeros(16)),
        (rng.normal(0, 0.3, (len(ACTIONS), 16)), np.zeros(len(ACTIONS))),
    ]
    return DqnPolicy(ACTIONS, layers, epsilon=0.0, seed=1)


def _latest(db: Path) -> StoredPolicy | None:
    store = Store.open(f"sqlite:///{db}")
    try:
        return PolicyLog(store).latest_policy("default")
    finally:
        store.close()


def test_run_keeps_a_promoted_dqn_learning_from_real_outcomes(tmp_path: Path) -> None:
    pytest.importorskip("torch", reason="online DQN learning needs the ml extra")
    online = {"interval_s": 0.5, "min_transitions": 3, "batch_size": 4, "gradient_steps": 10}
    faults = [{"at_s": at, "target": "svc", "kind": "crash"} for at in (1.0, 3.0, 5.0, 7.0, 9.0)]
    spec = one_target_spec(
        tmp_path, faults=faults, learning_extra={"learner": "dqn", "online": online, "actions": ACTIONS}
    )
    db = tmp_path / "n.db"
    store = Store.open(f"sqlite:///{db}")
    try:
        first = PolicyLog(store).save_policy(
            "default", _random_dqn().state(), source="twin", now=time.time(), promote=True
        )
    finally:
        store.close()
    with controller(spec):
        learned = wait_for(
            lambda: (p := _latest(db)) is not None and p.source == "online" and p,
            "a version the controller learned online",
            90,
        )
    assert isinstance(learned, StoredPolicy)
    assert learned.version > first
    assert learned.promoted
    before, after = _random_dqn().state()["layers"], learned.body["layers"]
    assert [len(x["W"]) for x in after] == [len(x["W"]) for x in before], "the same network, trained further"
    assert not np.allclose(np.asarray(after[0]["W"]), np.asarray(before[0]["W"])), "gradient steps moved its weights"
