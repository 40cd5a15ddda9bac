"""The DQN learner: a Q-network policy inside the safety mask, trained on the twin by ``novacron learn``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from novacron.errors import InputError
from novacron.learning import DqnPolicy, FaultContext, features, policy_from_state
from novacron.learning.context import n_features
from novacron.settings import parse_spec
from novacron.store import Store
from novacron.store.learning import PolicyLog
from tests.cli.runner import cli

ACTIONS = ["restart", "replace", "wait", "config_rollback"]
BAD_CONFIG = FaultContext(kind="unhealthy", detail="bad_config")
CRASH = FaultContext(kind="crash", detail="exited")


def _net() -> DqnPolicy:
    """A one-layer 'network' whose Q-values favour a rollback for a bad config, a restart otherwise."""
    w = np.zeros((len(ACTIONS), n_features()))
    w[0] = features(CRASH)  # restart: +1 per crash feature
    w[3] = 3.0 * (features(BAD_CONFIG) - features(CRASH))  # rollback: the bad-config features
    return DqnPolicy(ACTIONS, [(w, np.zeros(len(ACTIONS)))], epsilon=0.2, seed=1)


def test_the_dqn_takes_its_best_q_value_among_the_allowed_only() -> None:
    policy = _net()
    assert policy.choose(BAD_CONFIG, ACTIONS, explore=False) == ("config_rollback", 1.0)
    assert policy.choose(CRASH, ACTIONS, explore=False) == ("restart", 1.0)
    masked = policy.choose(BAD_CONFIG, ["restart", "wait"], explore=False)
    assert masked is not None
    assert masked.action in {"restart", "wait"}
    assert policy.choose(BAD_CONFIG, [], explore=True) is None


def test_exploring_it_stays_in_the_mask_with_exact_propensities() -> None:
    policy = _net()
    allowed = ["restart", "wait", "config_rollback"]
    probs = policy.probabilities(BAD_CONFIG, allowed)
    assert probs == pytest.approx({"restart": 0.2 / 3, "wait": 0.2 / 3, "config_rollback": 0.8 + 0.2 / 3})
    seen = {}
    for _ in range(300):
        choice = policy.choose(BAD_CONFIG, allowed)
        assert choice is not None
        assert choice.action in allowed
        seen[choice.action] = choice.propensity
    assert seen == pytest.approx(probs)


def test_a_dqn_snapshot_round_trips_and_a_broken_one_names_the_field() -> None:
    policy = _net()
    state = json.loads(json.dumps(policy.state()))
    again = policy_from_state(state)
    assert again.name == "dqn"
    assert again.value(BAD_CONFIG, "config_rollback") == pytest.approx(policy.value(BAD_CONFIG, "config_rollback"))
    with pytest.raises(InputError) as err:
        policy_from_state({**state, "actions": ACTIONS[:2]})
    assert err.value.where == "actions"
    with pytest.raises(InputError) as err:
        policy_from_state({**state, "features": 3})
    assert err.value.where == "features"


def test_the_spec_names_dqn_as_a_learner() -> None:
    spec = parse_spec({"learning": {"enabled": True, "learner": "dqn"}, "targets": []})
    assert spec.learning.learner == "dqn"


def test_novacron_learn_trains_a_dqn_on_the_twin_and_stores_it(tmp_path: Path) -> None:
    pytest.importorskip("stable_baselines3")
    pytest.importorskip("gymnasium")
    check = {"type": "http", "url": "http://twin/health", "interval_s": 0.1, "timeout_s": 0.25, "failures": 2}
    raw = {
        "name": "dqn-test",
        "policy": {"verify_timeout_s": 1.0, "backoff": {"base_s": 0.05, "cap_s": 0.5}},
        "controller": {"store_url": f"sqlite:///{tmp_path / 'n.db'}", "workdir": str(tmp_path / "work")},
        "twin": {"restart_s": 0.2, "replace_s": 0.3, "dt_s": 0.05, "fault_mix": {"bad_config": 1, "crash": 1}},
        "learning": {"enabled": True, "learner": "dqn", "explore": False, "seed": 1},
        "targets": [{"name": "svc", "kind": "sim", "checks": [check], "start_timeout_s": 10.0}],
    }
    spec = tmp_path / "fleet.yaml"
    spec.write_text(yaml.safe_dump(raw))
    res = cli("learn", "--spec", str(spec), "--episodes", "24", "--json", timeout=300)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["learner"] == "dqn"
    assert out["faults"] == 24
    assert out["decisions"] >= 24
    store = Store.open(f"sqlite:///{tmp_path / 'n.db'}")
    try:
        stored = PolicyLog(store).latest_policy("default")
    finally:
        store.close()
    assert stored is not None
    policy = policy_from_state(stored.body)
    assert policy.name == "dqn"
    for ctx in (BAD_CONFIG, CRASH):  # whatever it learned, it answers inside any mask
        choice = policy.choose(ctx, ["replace", "wait"], explore=False)
        assert choice is not None
        assert choice.action in {"replace", "wait"}
