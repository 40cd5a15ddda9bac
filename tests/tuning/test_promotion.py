"""A tuned configuration changes the spec only through the executor: dry-run, approval, rollback."""

from __future__ import annotations

from pathlib import Path

from novacron.model import ActionKind, ActionStatus
from novacron.runtime.tunepromote import promote, rollback_promotion
from novacron.settings import load_spec
from novacron.store import Store
from tests.cli.runner import cli, cli_json
from tests.tuning.conftest import tuning_spec

WINNER = {"targets.api.checks.0.interval_s": 12.5, "targets.api.checks.0.failures": 3, "twin.max_restarts": 2}


def _interval(path: Path) -> float:
    return load_spec(path).targets[0].checks[0].interval_s  # type: ignore[union-attr]


def _store(tmp_path: Path) -> Store:
    return Store.open(f"sqlite:///{tmp_path / 'n.db'}")


def test_dry_run_records_the_change_and_touches_nothing(tmp_path: Path) -> None:
    path = tuning_spec(tmp_path)
    before = path.read_text()
    [result] = promote(
        load_spec(path), WINNER, store_url=f"sqlite:///{tmp_path / 'n.db'}", spec_path=path, dry_run=True
    )
    assert result.status == "dry_run"
    assert path.read_text() == before
    store = _store(tmp_path)
    try:
        record = store.action(result.action_id)
        assert record.action.kind is ActionKind.CONFIG_CHANGE
        assert record.status is ActionStatus.DRY_RUN
        assert record.action.requested_by == "agent:tuner"
    finally:
        store.close()


def test_dry_run_wins_over_approval(tmp_path: Path) -> None:
    path = tuning_spec(tmp_path, policy={"dry_run": True, "approval_required": ["medium", "high", "critical"]})
    [result] = promote(load_spec(path), WINNER, store_url=f"sqlite:///{tmp_path / 'n.db'}", spec_path=path)
    assert result.status == "dry_run"  # nobody was asked: nothing would be touched
    assert _interval(path) == 5.0


def test_approval_is_asked_when_the_policy_says_so(tmp_path: Path) -> None:
    path = tuning_spec(tmp_path, policy={"approval_required": ["medium", "high", "critical"]})
    url = f"sqlite:///{tmp_path / 'n.db'}"
    [refused] = promote(load_spec(path), WINNER, store_url=url, spec_path=path, study="a")
    assert refused.status == "blocked"
    assert _interval(path) == 5.0
    [approved] = promote(load_spec(path), WINNER, store_url=url, spec_path=path, study="b", approve=True, who="ops")
    assert approved.status == "verified"
    assert _interval(path) == 12.5
    assert load_spec(path).targets[0].checks[0].failures == 3  # type: ignore[union-attr]
    assert load_spec(path).tuning is not None  # the rest of the spec is kept


def test_promotion_and_rollback_through_the_cli(tmp_path: Path) -> None:
    path = tuning_spec(tmp_path, budget=3)
    out = cli_json("tune", "-c", str(path), "--workers", "1", "--promote")
    [promo] = out["promotion"]
    assert promo["status"] == "verified"
    tuned = out["best"]["promotable"]
    assert _interval(path) == tuned["targets.api.checks.0.interval_s"]
    store = _store(tmp_path)
    try:
        versions = store.config_versions()
        assert len(versions) >= 2  # the spec before tuning and the tuned one
        assert "config_change" in versions[-1].source
    finally:
        store.close()
    back = cli_json("tune-rollback", "-c", str(path), "--action", promo["action_id"])
    assert back["status"] == "verified"
    assert _interval(path) == 5.0
    res = cli("tune-rollback", "-c", str(path), "--action", back["action_id"])
    assert res.returncode == 2  # only a config_change is rolled back this way
    assert "not a config_change" in res.stderr


def test_nothing_to_promote_when_only_twin_knobs_changed(tmp_path: Path) -> None:
    path = tuning_spec(tmp_path)
    assert promote(load_spec(path), {"twin.max_restarts": 3}, store_url=f"sqlite:///{tmp_path / 'n.db'}") == []


def test_rollback_by_the_library_restores_the_previous_spec(tmp_path: Path) -> None:
    path = tuning_spec(tmp_path)
    url = f"sqlite:///{tmp_path / 'n.db'}"
    [done] = promote(load_spec(path), WINNER, store_url=url, spec_path=path)
    assert _interval(path) == 12.5
    undo = rollback_promotion(done.action_id, store_url=url, spec_path=path)
    assert undo.status == "verified"
    assert _interval(path) == 5.0
