"""``kind: sim`` targets: ``novacron run`` drives the twin's VMs through the same controller."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from novacron.errors import ConfigError
from novacron.settings import load_spec, parse_spec
from novacron.store import Store
from tests.cli.runner import cli, controller, wait_for


def sim_spec(tmp_path: Path, *, faults: list[dict[str, Any]], learning: dict[str, Any] | None = None) -> Path:
    """Two sim targets (api depends on db) on a twin with fast repairs."""
    check = {"type": "http", "url": "http://twin/health", "interval_s": 0.1, "timeout_s": 0.25, "failures": 2}
    spec: dict[str, Any] = {
        "name": "twin-test",
        "policy": {"verify_timeout_s": 2.0, "backoff": {"base_s": 0.05, "cap_s": 0.5}},
        "controller": {"store_url": f"sqlite:///{tmp_path / 'n.db'}", "workdir": str(tmp_path / "work")},
        "twin": {"restart_s": 0.3, "replace_s": 0.5, "dt_s": 0.05, "faults": faults},
        "targets": [
            {"name": "db", "kind": "sim", "checks": [check], "start_timeout_s": 10.0},
            {"name": "api", "kind": "sim", "checks": [check], "depends_on": ["db"], "start_timeout_s": 10.0},
        ],
    }
    if learning is not None:
        spec["learning"] = learning
    path = tmp_path / "fleet.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _resolved(db: Path, target: str) -> list[Any]:
    store = Store.open(f"sqlite:///{db}")
    try:
        return [i for i in store.incidents() if i.target == target and i.resolved_at is not None]
    finally:
        store.close()


def test_run_heals_a_crashed_sim_target_with_a_restart(tmp_path: Path) -> None:
    spec = sim_spec(tmp_path, faults=[{"at_s": 1.0, "target": "db", "kind": "crash"}])
    with controller(spec) as run:
        assert run.started["targets"] == 2
        healed = wait_for(lambda: _resolved(tmp_path / "n.db", "db"), "the crashed sim target healed", 30)
    assert healed[0].kind.value == "crash"
    store = Store.open(f"sqlite:///{tmp_path / 'n.db'}")
    try:
        kinds = [a.action.kind.value for a in store.actions(incident_id=healed[0].id)]
    finally:
        store.close()
    assert kinds[-1] == "restart", "the first step (oldest action) is a restart"


def test_a_sim_target_needs_a_twin_block_and_faults_name_sim_targets() -> None:
    with pytest.raises(ConfigError, match=r"twin: required"):
        parse_spec({"targets": [{"name": "a", "kind": "sim"}]})
    bad = {"twin": {"faults": [{"at_s": 1, "target": "b", "kind": "crash"}]}, "targets": [{"name": "a", "kind": "sim"}]}
    with pytest.raises(ConfigError, match=r"twin.faults\[0\].target"):
        parse_spec(bad)
    with pytest.raises(ConfigError, match=r"targets\[0\]\.command"):
        parse_spec({"targets": [{"name": "a"}]})


def test_run_with_an_unknown_twin_fault_exits_2_naming_the_field(tmp_path: Path) -> None:
    spec = sim_spec(tmp_path, faults=[{"at_s": 1.0, "target": "db", "kind": "meteor"}])
    res = cli("run", "-c", str(spec))
    assert res.returncode == 2
    assert "twin.faults[0].kind" in res.stderr


def _first_actions(db: Path, target: str) -> list[str]:
    """The first step of each resolved incident on ``target``, oldest incident first."""
    store = Store.open(f"sqlite:///{db}")
    try:
        firsts = []
        for inc in reversed(store.incidents()):
            if inc.target == target and inc.resolved_at is not None:
                firsts.append(store.actions(incident_id=inc.id)[-1].action.kind.value)
        return firsts
    finally:
        store.close()


def test_twin_build_measures_repair_timings_from_the_store(tmp_path: Path) -> None:
    faults = [{"at_s": at, "target": "db", "kind": "crash"} for at in (1.0, 2.5, 4.0)]
    spec = sim_spec(tmp_path, faults=faults)
    with controller(spec):
        wait_for(lambda: len(_resolved(tmp_path / "n.db", "db")) >= 3, "three crashes healed", 30)
    out = tmp_path / "twin.yaml"
    res = cli("twin", "build", "-c", str(spec), "-o", str(out), "--json")
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    # The twin restarts in 0.3 s; the store's repairs also hold the verifying probe's wait.
    assert 0.25 <= summary["restart_s"] <= 0.6
    twin = load_spec(out)
    assert [t.kind for t in twin.targets] == ["sim", "sim"]
    assert twin.target("api").depends_on == ["db"]
    assert twin.twin is not None
    assert twin.twin.restart_s == summary["restart_s"]


def test_twin_build_without_repairs_in_the_store_is_bad_input(tmp_path: Path) -> None:
    spec = sim_spec(tmp_path, faults=[])
    Store.open(f"sqlite:///{tmp_path / 'n.db'}").close()
    res = cli("twin", "build", "-c", str(spec), "-o", str(tmp_path / "twin.yaml"))
    assert res.returncode == 2
    assert "crash incidents" in res.stderr
