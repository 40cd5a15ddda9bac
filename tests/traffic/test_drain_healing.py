"""`drain` as a healing step under `novacron run`: real HAProxy, a crashed replica shielded, repaired, undrained."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest

from novacron.demo.fleet import free_port_block
from novacron.settings import FrontendSpec, HttpCheck
from novacron.testing import http_service_target
from tests.binaries import require
from tests.cli.runner import Running, controller, steady_service, wait_for, write_spec

from .support import service_command

pytestmark = pytest.mark.slow


def _api(run: Running, path: str) -> Any:
    token = Path(run.started["token_file"]).read_text().strip()
    res = httpx.get(f"{run.started['api']}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    res.raise_for_status()
    return res.json()


def _healthy(run: Running, name: str, replicas: int) -> bool:
    t = next(t for t in _api(run, "/status")["targets"] if t["name"] == name)
    return bool(t["state"] == "healthy" and t["running"] == replicas and t["incident"] is None)


def _resolved(run: Running, target: str) -> dict[str, Any] | None:
    for inc in _api(run, "/incidents"):
        if inc["target"] == target and inc["resolved_at"] is not None:
            return dict(_api(run, f"/incidents/{inc['id']}"))
    return None


def _replica_pid(tmp_path: Path, target: str, replica: int) -> int:
    from novacron.store import Store

    store = Store.open(f"sqlite:///{tmp_path / 'n.db'}")
    try:
        return next(p.pid for p in store.processes() if p.target == target and p.replica == replica)
    finally:
        store.close()


@pytest.mark.timeout(300)
def test_a_ladder_drains_a_crashed_replica_repairs_it_then_undrains_it_and_refuses_drain_without_a_balancer(
    tmp_path: Path,
) -> None:
    require("haproxy", package="haproxy")
    listen = free_port_block(1)
    web = http_service_target(
        "web",
        free_port_block(4),
        replicas=2,
        command=service_command("web"),
        checks=[HttpCheck(url="http://127.0.0.1:{port}/health", interval_s=0.2, timeout_s=2.0, failures=3)],
        start_timeout_s=30.0,
        frontend=FrontendSpec(listen=f"127.0.0.1:{listen}"),
    )
    solo = steady_service("solo")
    spec = write_spec(tmp_path, web, solo, ladder=["drain", "restart", "escalate"])
    with controller(spec) as run:
        wait_for(lambda: _healthy(run, "web", 2) and _healthy(run, "solo", 1), "the fleet healthy")

        os.kill(_replica_pid(tmp_path, "web", 1), signal.SIGKILL)
        healed = wait_for(lambda: _resolved(run, "web"), "web's incident resolved", 90)
        steps = [(a["kind"], a["status"], a["params"]) for a in reversed(healed["actions"])]
        assert [(k, s) for k, s, _ in steps] == [
            ("drain", "verified"),
            ("restart", "verified"),
            ("undrain", "verified"),
        ]
        assert steps[0][2]["replicas"] == [1]
        kinds = [e["kind"] for e in healed["timeline"]]
        assert kinds.index("resolved") > max(i for i, k in enumerate(kinds) if k == "verified")
        wait_for(lambda: _healthy(run, "web", 2), "web serving on both replicas")
        for _ in range(20):  # the repaired replica takes requests again, through the balancer
            assert httpx.get(f"http://127.0.0.1:{listen}/", timeout=5).status_code == 200

        os.kill(_replica_pid(tmp_path, "solo", 0), signal.SIGKILL)
        healed = wait_for(lambda: _resolved(run, "solo"), "solo's incident resolved", 90)
        kinds_done = [(a["kind"], a["status"]) for a in reversed(healed["actions"])]
        assert kinds_done == [("drain", "failed"), ("restart", "verified")]
        refused = next(e for e in healed["timeline"] if e["kind"] == "action_refused")
        assert refused["detail"] == (
            "drain solo refused: solo has no load balancer to take it out of (give it a frontend: in the spec)"
        )
        audit = _api(run, "/audit")
        assert any(e["verb"] == "action.drain" and e["subject"] == "solo" and e["result"] == "refused" for e in audit)
