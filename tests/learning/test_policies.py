"""The policies' contract: the ladder as a prior, learning per fault context, the mask, snapshots."""

from __future__ import annotations

import pytest

from novacron.errors import InputError
from novacron.learning import (
    FaultContext,
    LadderPolicy,
    Record,
    ThompsonPolicy,
    detail_class,
    doubly_robust,
    ips,
    policy_from_state,
    reward,
)

ACTIONS = ["restart", "replace", "wait", "config_rollback"]
CRASH = FaultContext(kind="crash", detail="exited")
BAD_CONFIG = FaultContext(kind="unhealthy", detail="bad_config")


def test_the_ladder_takes_its_next_untried_step_and_never_a_masked_one() -> None:
    ladder = LadderPolicy(["restart", "replace", "escalate"])
    assert ladder.choose(CRASH, ACTIONS) == ("restart", 1.0)
    tried = FaultContext(kind="crash", tried=("restart",))
    assert ladder.choose(tried, ACTIONS) == ("replace", 1.0)
    assert ladder.choose(FaultContext(kind="crash", tried=("restart", "replace")), ACTIONS) is None
    assert ladder.choose(CRASH, ["replace"]) is None, "the ladder's step is masked: a human decides"


def test_the_bandit_starts_as_the_ladder() -> None:
    bandit = ThompsonPolicy(ACTIONS, ladder=["restart", "replace"], seed=1)
    assert bandit.choose(CRASH, ACTIONS, explore=False) == ("restart", 1.0)
    assert bandit.choose(BAD_CONFIG, ACTIONS, explore=False) == ("restart", 1.0)
    second = FaultContext(kind="crash", tried=("restart",))
    assert bandit.choose(second, ["replace", "wait", "config_rollback"], explore=False) == ("replace", 1.0)


def test_the_bandit_learns_a_different_first_step_per_fault_kind() -> None:
    bandit = ThompsonPolicy(ACTIONS, ladder=["restart", "replace"], seed=2)
    for _ in range(30):
        bandit.update(BAD_CONFIG, "restart", reward(3.0, healed=False))
        bandit.update(BAD_CONFIG, "config_rollback", reward(0.5, healed=True))
        bandit.update(CRASH, "restart", reward(0.5, healed=True))
    assert bandit.choose(BAD_CONFIG, ACTIONS, explore=False) == ("config_rollback", 1.0)
    assert bandit.choose(CRASH, ACTIONS, explore=False) == ("restart", 1.0)


def test_exploration_never_leaves_the_allowed_set_and_reports_its_odds() -> None:
    bandit = ThompsonPolicy(ACTIONS, seed=3, noise=20.0)  # wide posteriors: it explores a lot
    allowed = ["wait", "config_rollback"]
    seen = set()
    for _ in range(300):
        choice = bandit.choose(CRASH, allowed)
        assert choice is not None
        assert choice.action in allowed
        assert 0 < choice.propensity <= 1
        seen.add(choice.action)
    assert seen == set(allowed)
    probs = bandit.probabilities(CRASH, allowed)
    assert sum(probs.values()) == pytest.approx(1.0, abs=0.01)
    assert bandit.choose(CRASH, []) is None


def test_off_policy_estimates_recover_a_known_value() -> None:
    # Logged uniformly over two actions; "a" always earns 1, "b" always 0.
    records = [Record(CRASH, ("a", "b"), a, 0.5, 1.0 if a == "a" else 0.0) for a in ("a", "b") * 50]

    def always_a(_ctx: FaultContext, allowed: object) -> dict[str, float]:
        return {"a": 1.0, "b": 0.0}

    assert ips(records, always_a).value == pytest.approx(1.0)
    assert doubly_robust(records, always_a, lambda _c, a: 0.5).value == pytest.approx(1.0)
    assert doubly_robust(records, always_a, lambda _c, a: 1.0 if a == "a" else 0.0).value == pytest.approx(1.0)
    with pytest.raises(InputError, match="records"):
        ips([], always_a)


def test_a_snapshot_round_trips_and_a_foreign_one_is_refused_naming_the_field() -> None:
    bandit = ThompsonPolicy(ACTIONS, seed=4)
    bandit.update(BAD_CONFIG, "config_rollback", 5.0)
    again = policy_from_state(bandit.state(), seed=4)
    assert again.value(BAD_CONFIG, "config_rollback") == pytest.approx(bandit.value(BAD_CONFIG, "config_rollback"))
    with pytest.raises(InputError, match=r"policy\.version"):
        policy_from_state({**bandit.state(), "version": 99})
    with pytest.raises(InputError, match=r"policy\.kind"):
        policy_from_state({"version": 1, "kind": "sarsa"})
    corrupt = bandit.state()
    corrupt["arms"]["restart"]["A"] = [[1.0]]
    with pytest.raises(InputError, match="arms"):
        policy_from_state(corrupt)
    assert isinstance(policy_from_state(LadderPolicy(["restart"]).state()), LadderPolicy)


def test_reward_and_detail_classes() -> None:
    assert reward(2.0, healed=True) > reward(2.0, healed=False) > reward(2.0, healed=False, harmed=True)
    assert reward(2.0, healed=True, feedback=1) > reward(2.0, healed=True)
    assert detail_class("HTTP 502: upstream db failing") == "upstream"
    assert detail_class("HTTP 503: bad configuration") == "bad_config"
    assert detail_class("ConnectionRefusedError: connection refused") == "refused"
    assert detail_class("timeout after 250 ms") == "no_answer"


def test_a_riskier_step_costs_more_so_the_gentler_of_two_equal_repairs_wins() -> None:
    # A restart (low risk) and a configuration rollback (high) that heal a crash as fast:
    # the rollback would undo a good change on a real fleet, and its reward says so.
    assert reward(1.0, healed=True, risk=1) > reward(1.0, healed=True, risk=2) > reward(1.0, healed=True, risk=3)
    assert reward(1.0, healed=True, risk=3) == pytest.approx(reward(1.0, healed=True) - 2.0)
