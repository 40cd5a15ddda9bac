"""End to end: a service with a seeded bug crashes in the fleet; the bug fixer agent produces a
branch whose tests pass; a human approves the deployment; the crash stops."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import psutil

from novacron.demo.fleet import free_port_block
from novacron.model import ActionKind
from novacron.runtime.controller import Controller
from novacron.settings import FleetSpec, HttpCheck, RepairSpec, TargetSpec
from novacron.testing import fleet

from ..codegen.repos import PYTEST, git, make_repo
from ..integration.conftest import eventually

SERVICE = """\
import http.server
import os

from ports import pick_port


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


port = pick_port([int(os.environ["PORT"])], 1)
http.server.HTTPServer(("127.0.0.1", port), Handler).serve_forever()
"""
PORTS = '''\
def pick_port(ports, replica):
    """The port of a replica; replicas count from 1."""
    return ports[replica]
'''
TESTS = """\
from ports import pick_port


def test_first_replica():
    assert pick_port([8000, 8001], 1) == 8000


def test_second_replica():
    assert pick_port([8000, 8001], 2) == 8001
"""


def _spec(tmp_path: Path, repo: Path, port: int) -> FleetSpec:
    target = TargetSpec(
        name="shop",
        command=[sys.executable, "service.py"],
        cwd=str(repo),
        env={"PORT": str(port)},
        port=port,
        start_timeout_s=5.0,
        stop_timeout_s=2.0,
        checks=[HttpCheck(url=f"http://127.0.0.1:{port}/", interval_s=0.2, timeout_s=0.5, failures=2)],
        repair=RepairSpec(repo=str(repo), test=PYTEST, timeout_s=60, budget_s=240),
    )
    base = fleet(target, store_url=f"sqlite:///{tmp_path / 'n.db'}")
    only_bugfix = {name: {"enabled": False} for name in ("exhaustion", "capacity", "scaling", "circuit")}
    agents = {"enabled": True, "agents": {**only_bugfix, "bugfix": {"interval_s": 0.5}}}
    return FleetSpec.model_validate({**base.model_dump(), "agents": agents})


async def test_crash_fix_approve_deploy_crash_stops(tmp_path: Path) -> None:
    repo = make_repo(
        tmp_path,
        {
            "pytest.ini": "[pytest]\npythonpath = .\n",
            "service.py": SERVICE,
            "ports.py": PORTS,
            "tests/test_ports.py": TESTS,
        },
    )
    head = git(repo, "rev-parse", "HEAD")
    c = Controller(_spec(tmp_path, repo, free_port_block(2)), workdir=tmp_path / "work", seed=1)
    await c.start()
    try:

        def deploy_pending() -> bool:
            return any(a.kind is ActionKind.DEPLOY_PATCH for a in c.approvals.pending())

        await eventually(deploy_pending, timeout=240, what="a deploy_patch proposal awaiting approval")
        [out] = [o for o in c.store.agent_outputs(agent="bugfix") if o["proposals"]]
        finding = out["findings"][0]
        assert finding["kind"] == "crash_bug"
        assert finding["evidence"]["fixed"]
        branch = finding["evidence"]["branch"]
        assert git(repo, "rev-list", "--count", f"main..{branch}").strip() == "1"
        assert git(repo, "rev-parse", "HEAD") == head  # the user's checkout is untouched
        assert out["proposals"][0]["risk"] == "high"
        deploy = next(a for a in c.approvals.pending() if a.kind is ActionKind.DEPLOY_PATCH)
        c.approvals.decide(deploy.id, approve=True, who="ops")
        await eventually(lambda: c.store.action(deploy.id).status.value == "verified", timeout=30, what="deployed")
        await eventually(lambda: c.health.is_healthy("shop"), timeout=10, what="patched service healthy")
        pid = c.actuator.pids("shop")[0]
        assert "patches" in " ".join(psutil.Process(pid).cwd().split("/"))
        await asyncio.sleep(1.5)
        assert list(c.actuator.pids("shop")) == [pid]  # no more crashes
        assert c.health.is_healthy("shop")
    finally:
        await asyncio.wait_for(c.stop(), timeout=20)
