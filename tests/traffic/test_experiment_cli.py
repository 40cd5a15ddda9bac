"""`novacron run` with a frontend, steered by `novacron experiment …` as a user types it."""

from __future__ import annotations

import shlex
import socket
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from novacron.demo.fleet import free_port_block
from novacron.settings import FrontendSpec
from tests.binaries import require
from tests.cli.runner import cli, cli_json, controller, kill_fleet, service, write_spec

pytestmark = pytest.mark.slow


@pytest.mark.timeout(240)
def test_experiment_commands_start_watch_and_stop_a_canary(tmp_path: Path) -> None:
    require("haproxy", package="haproxy")
    listen = free_port_block(1)
    web = service("web", replicas=1, frontend=FrontendSpec(listen=f"127.0.0.1:{listen}"))
    spec = write_spec(tmp_path, web)
    # A workdir relative to where `run` starts, as in examples/canary.yaml: HAProxy's admin socket
    # must still be a path (a relative one was read as host:port and HAProxy refused to start).
    relative = yaml.safe_load(spec.read_text())
    relative["controller"]["workdir"] = "work"
    spec.write_text(yaml.safe_dump(relative))
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
        assert {type(t["significant"]) for look in status["looks"] for t in look["tests"].values()} == {bool}
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
        # traffic actions by hand: a mapping as JSON; a server the backend lacks is refused, named
        rerouted = cli("heal", "web", "-a", "reroute", "-p", 'weights={"r0": 200}', *where)
        assert rerouted.returncode == 0, rerouted.stderr
        assert "weights r0=200" in rerouted.stdout
        unknown = cli("heal", "web", "-a", "drain", "-p", "server=r9", *where)
        assert unknown.returncode == 2
        assert "error: params.server: web has no server 'r9' (its servers: r0)" in unknown.stderr
        not_json = cli("heal", "web", "-a", "reroute", "-p", 'weights={"r0": 200', *where)
        assert not_json.returncode == 2
        assert "error: --param: weights: " in not_json.stderr


def test_a_configuration_haproxy_refuses_stops_run_with_its_reason_before_any_target_starts(tmp_path: Path) -> None:
    require("haproxy", package="haproxy")
    web = service("web", replicas=1, frontend=FrontendSpec(listen=f"127.0.0.1:{free_port_block(1)}"))
    spec = write_spec(tmp_path, web)
    # HAProxy's admin socket lives in the workdir; a path this long is one it refuses.
    deep = yaml.safe_load(spec.read_text())
    deep["controller"]["workdir"] = str(tmp_path / ("w" * 100))
    spec.write_text(yaml.safe_dump(deep))
    res = cli("run", "-c", str(spec), timeout=60)
    assert res.returncode == 2, res.stderr
    assert "HAProxy refused the configuration: " in res.stderr
    assert "too long (max " in res.stderr, "HAProxy's own reason is shown"
    assert "Traceback" not in res.stderr
    port = web.port
    assert port is not None
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0, "no replica was started"


def test_a_spec_canary_whose_variant_will_not_run_stops_run_and_leaves_nothing_running(tmp_path: Path) -> None:
    require("haproxy", package="haproxy")
    listen = free_port_block(1)
    web = service("web", replicas=1, frontend=FrontendSpec(listen=f"127.0.0.1:{listen}"))
    spec = write_spec(tmp_path, web)
    data = yaml.safe_load(spec.read_text())
    failing = [sys.executable, "-c", "import sys; sys.exit(3)"]
    data["experiments"] = [{"name": "web-v2", "target": "web", "arm": "b", "command": failing}]
    spec.write_text(yaml.safe_dump(data))
    try:
        res = cli("run", "-c", str(spec), timeout=90)
        assert res.returncode == 2, res.stderr
        assert "error: experiments[0].command: variant command exited with 3" in res.stderr
        # The replicas and HAProxy it had started are stopped again, as on any exit of `run`.
        assert web.port is not None
        for port in (web.port, listen):
            with socket.socket() as probe:
                assert probe.connect_ex(("127.0.0.1", port)) != 0, f"something still listens on {port}"
        assert "controller: stopped" in cli("status", "-c", str(spec)).stdout
    finally:
        kill_fleet(tmp_path)  # a failure above must not leave replicas behind
