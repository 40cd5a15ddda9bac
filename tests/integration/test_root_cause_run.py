"""Root cause decides, in ``novacron run``: killing the database heals it, and only it."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any

import yaml

from novacron.demo.fleet import free_port_block
from novacron.model import Incident
from novacron.store import Store
from tests.cli.runner import controller, wait_for

# The database takes a second to start, as databases do: its dependents surely notice it is gone.
SLOW_START = (
    "import runpy, sys, time; time.sleep(1.0); sys.argv = ['service', *sys.argv[1:]]; "
    "runpy.run_module('novacron.demo.service', run_name='__main__')"
)


def _service(name: str, port: int, upstreams: dict[str, int]) -> dict[str, Any]:
    args = ["--name", name, "--port", str(port)]
    command = (
        [sys.executable, "-m", "novacron.demo.service", *args]
        if upstreams
        else [sys.executable, "-c", SLOW_START, *args]
    )
    for up in upstreams.values():
        command += ["--upstream", f"http://127.0.0.1:{up}"]
    # A dependent is checked on "/", which calls its upstreams: it fails while they are down.
    path = "/" if upstreams else "/health"
    check = {"type": "http", "url": f"http://127.0.0.1:{port}{path}", "interval_s": 0.1, "timeout_s": 0.3}
    return {
        "name": name,
        "command": command,
        "port": port,
        "start_timeout_s": 5,
        "stop_timeout_s": 1,
        "checks": [{**check, "failures": 2}],
        "depends_on": list(upstreams),
    }


def _spec(tmp_path: Path) -> Path:
    db = free_port_block(3)
    auth, worker = db + 1, db + 2
    spec = {
        "name": "rootcause",
        "policy": {"verify_timeout_s": 5, "backoff": {"base_s": 0.1, "cap_s": 1}},
        "controller": {"store_url": f"sqlite:///{tmp_path / 'n.db'}", "workdir": str(tmp_path / "work")},
        "targets": [
            _service("db", db, {}),
            _service("auth", auth, {"db": db}),
            _service("worker", worker, {"db": db}),
        ],
    }
    path = tmp_path / "fleet.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_killing_the_database_yields_one_root_incident_and_no_action_on_dependents(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    store = Store.open(f"sqlite:///{tmp_path / 'n.db'}")
    try:
        with controller(spec):
            # Every target reported, and healthy: an empty status table (the controller not yet
            # started) is not a healthy fleet, and a database killed while it starts is no crash.
            wait_for(
                lambda: (
                    sorted(r.target for r in store.target_statuses() if r.health == "healthy")
                    == ["auth", "db", "worker"]
                ),
                "a healthy fleet",
            )
            [db] = [p for p in store.processes() if p.target == "db"]
            os.killpg(db.pid, signal.SIGKILL)
            wait_for(lambda: len(store.incidents()) >= 3, "incidents on the database and its dependents")
            wait_for(lambda: store.open_incidents() == [] and len(store.incidents()) >= 3, "every incident resolved")
        incidents: dict[str, Incident] = {i.target: i for i in store.incidents()}
        assert sorted(incidents) == ["auth", "db", "worker"]
        root = incidents["db"]
        root_events = store.timeline(root.id)
        diagnosed = next(e for e in root_events if e.kind == "diagnosed")
        assert diagnosed.data["root_cause"] == "db"
        crash = next(e for e in root_events if e.kind == "crash_classified")
        assert crash.data["crash_class"] == "signal:SIGKILL"
        linked_to_root = {e.data["dependent"] for e in root_events if e.kind == "linked"}
        assert linked_to_root == {"auth", "worker"}
        for name in ("auth", "worker"):
            events = store.timeline(incidents[name].id)
            linked = next(e for e in events if e.kind == "linked")
            assert linked.data["root_incident"] == root.id
            assert "re-verified healthy, no action taken" in events[-1].detail
        touched = {a.action.target for a in store.actions(limit=1000)}
        assert touched == {"db"}  # zero actions on the dependents
    finally:
        store.close()


def _sim_spec(tmp_path: Path) -> Path:
    """db ← api on the twin: api's probe notices db's hang first (faster, one failure), db's later."""
    probe = {"type": "http", "url": "http://twin/health", "timeout_s": 0.25}
    spec = {
        "name": "rootslot",
        "policy": {"verify_timeout_s": 1.0, "blast_radius": 0.5, "backoff": {"base_s": 0.05, "cap_s": 0.5}},
        "controller": {"store_url": f"sqlite:///{tmp_path / 'n.db'}", "workdir": str(tmp_path / "work")},
        "twin": {
            "restart_s": 0.3,
            "replace_s": 0.5,
            "dt_s": 0.05,
            "faults": [{"at_s": 1.0, "target": "db", "kind": "hang"}],
        },
        "targets": [
            {
                "name": "db",
                "kind": "sim",
                "checks": [{**probe, "interval_s": 0.5, "failures": 3}],
                "start_timeout_s": 10,
            },
            {
                "name": "api",
                "kind": "sim",
                "checks": [{**probe, "interval_s": 0.1, "failures": 1}],
                "depends_on": ["db"],
                "start_timeout_s": 10,
            },
        ],
    }
    path = tmp_path / "fleet.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_a_dependent_noticed_first_gives_the_only_slot_to_its_upstream(tmp_path: Path) -> None:
    """The blast radius (one slot for two targets) never holds the root cause behind its dependent's ladder."""
    store = Store.open(f"sqlite:///{tmp_path / 'n.db'}")
    try:
        with controller(_sim_spec(tmp_path)):
            wait_for(lambda: len(store.incidents()) >= 2 and not store.open_incidents(), "both incidents resolved", 30)
        incidents: dict[str, Incident] = {i.target: i for i in store.incidents()}
        db, api = incidents["db"], incidents["api"]
        assert [(a.action.kind.value, a.status.value) for a in store.actions(incident_id=db.id)] == [
            ("restart", "verified")
        ]
        assert {e.data.get("dependent") for e in store.timeline(db.id) if e.kind == "linked"} == {"api"}
        api_events = store.timeline(api.id)
        linked = [e for e in api_events if e.kind == "linked"]
        assert linked
        assert all(e.data["root_cause"] == "db" and e.data["root_incident"] == db.id for e in linked)
        assert api_events[-1].kind == "resolved"
        assert "db recovered; api re-verified healthy" in api_events[-1].detail
        # Whatever api's ladder had in flight when db was found failing, nothing more touched it:
        # no later step (its replace) and no action on api once db's incident was open.
        api_actions = store.actions(incident_id=api.id)
        assert all(a.action.kind.value == "restart" and a.created_at < db.opened_at for a in api_actions)
    finally:
        store.close()
