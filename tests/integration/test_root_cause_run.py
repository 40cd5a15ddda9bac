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
