"""`novacron run` with a frontend, steered by `novacron experiment …` as a user types it."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import httpx
import pytest

from novacron.demo.fleet import free_port_block
from novacron.settings import FrontendSpec
from tests.binaries import require
from tests.cli.runner import cli, cli_json, controller, service, write_spec

pytestmark = pytest.mark.slow


@pytest.mark.timeout(240)
def test_experiment_commands_start_watch_and_stop_a_canary(tmp_path: Path) -> None:
    require("haproxy", package="haproxy")
    listen = free_port_block(1)
    web = service("web", replicas=1, frontend=FrontendSpec(listen=f"127.0.0.1:{listen}"))
    spec = write_spec(tmp_path, web)
    variant = shlex.join([sys.executable, "-m", "novacron.demo.service", "--name", "web-b", "--port", "{port}"])
    with controller(spec):
        where = ["-c", str(spec)]
        started = cli_json(
            "experiment", "start", "--target", "web", "--variant", f"b={variant}", "--split", "50", *where
        )
        assert started["phase"] == "running"
        assert started["split"] == 50.0
        assert started["weights"]["v_b"] > 0
        for _ in range(40):
            assert httpx.get(f"http://127.0.0.1:{listen}/", timeout=5).status_code == 200
        status = cli_json("experiment", "status", "web-b", *where)
        assert status["arms"]["b"]["requests"] > 0
        assert status["looks"]
        listed = cli_json("experiment", "list", *where)
        assert [e["name"] for e in listed] == ["web-b"]
        stopped = cli_json("experiment", "stop", "web-b", *where)
        assert stopped["phase"] == "stopped"
        # bad input: exit 2, named, nothing changed
        bad_split = cli("experiment", "start", "--target", "web", "--variant", f"c={variant}", "--split", "150", *where)
        assert bad_split.returncode == 2
        assert "--split" in bad_split.stderr
        dead = cli("experiment", "start", "--target", "web", "--variant", "c=false", "--name", "dead", *where)
        assert dead.returncode == 2
        assert "variant" in dead.stderr
        again = cli("experiment", "stop", "web-b", *where)
        assert again.returncode == 2
        assert "not running" in again.stderr
        assert [e["name"] for e in cli_json("experiment", "list", *where)] == ["web-b"]
