"""A failed verification names the checks that block the restarted process, not what failed before it.

The service answers its HTTP check and sends heartbeats in its first run; its HTTP check
then fails, the controller restarts it, and the new process answers HTTP but never beats.
The restart's verification fails on the heartbeat, and its detail must say so instead of
naming the HTTP check's last failure (before the restart, or while the new process was
still binding its port), which has passed since.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

from novacron.demo.fleet import free_port_block
from tests.cli.runner import cli_json, controller, wait_for

SERVICE = """
import http.server, pathlib, socket, sys, threading, time
port, beat_port, here = int(sys.argv[1]), int(sys.argv[2]), pathlib.Path(sys.argv[3])
runs = here / "runs"
run = int(runs.read_text()) + 1 if runs.exists() else 1
runs.write_text(str(run))

def beat():  # only the first run beats
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    while True:
        s.sendto(b"web", ("127.0.0.1", beat_port))
        time.sleep(0.1)

class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        sick = run == 1 and (here / "sick").exists()
        self.send_response(500 if sick else 200)
        self.end_headers()

    def log_message(self, *args):
        pass

if run == 1:
    threading.Thread(target=beat, daemon=True).start()
http.server.HTTPServer(("127.0.0.1", port), Health).serve_forever()
"""


def _spec(tmp_path: Path) -> Path:
    port = free_port_block(2)
    beat_port = port + 1  # the controller's heartbeat port, fixed so the service knows it
    (tmp_path / "service.py").write_text(SERVICE)
    target: dict[str, Any] = {
        "name": "web",
        "command": [sys.executable, str(tmp_path / "service.py"), "{port}", str(beat_port), str(tmp_path)],
        "port": port,
        "start_timeout_s": 10,
        "stop_timeout_s": 1,
        "checks": [
            {"type": "http", "url": "http://127.0.0.1:{port}/", "interval_s": 0.1, "timeout_s": 0.5, "failures": 2},
            {"type": "heartbeat", "expected_interval_s": 0.1, "acceptable_pause_s": 0.5},
        ],
    }
    spec = {
        "name": "verify-detail",
        # Room for the new process to bind its port and pass its HTTP check within the window.
        "policy": {"verify_timeout_s": 5, "backoff": {"base_s": 0.1, "cap_s": 1}},
        "controller": {
            "store_url": f"sqlite:///{tmp_path / 'n.db'}",
            "workdir": str(tmp_path / "work"),
            "heartbeat_udp_port": beat_port,
        },
        "targets": [target],
    }
    path = tmp_path / "fleet.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_a_failed_verification_names_the_check_blocking_after_the_restart(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    with controller(spec):
        wait_for(lambda: cli_json("status", "--json", "-c", str(spec))["targets"][0]["state"] == "healthy", "healthy")
        (tmp_path / "sick").touch()  # the first run's HTTP check fails: the incident opens on it

        def failed_restart() -> dict[str, Any] | None:
            incidents = cli_json("incidents", "list", "--json", "-c", str(spec))
            if not incidents:
                return None
            shown = cli_json("incidents", "show", incidents[0]["id"], "--json", "-c", str(spec))
            done = [a for a in shown["actions"] if a["kind"] == "restart" and a["status"] == "failed"]
            return dict(done[0]) if done else None

        restart = wait_for(failed_restart, "the restart's verification failed", timeout=60)
    detail = restart["detail"]
    assert "not healthy within" in detail, detail
    assert "heartbeat: no result since the start" in detail, detail
    assert "http:0" not in detail, f"the HTTP check has answered since the restart: {detail}"
