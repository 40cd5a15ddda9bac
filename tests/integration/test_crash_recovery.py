"""The controller survives its own SIGKILL mid-action: no duplicate action, the incident goes on."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import yaml

from novacron.demo.fleet import free_port_block
from novacron.model import ActionStatus, IncidentStatus
from novacron.store import Store

# A service that ignores SIGTERM, so a graceful restart stays in flight for stop_timeout_s.
STUBBORN = """
import http.server, signal, sys
signal.signal(signal.SIGTERM, signal.SIG_IGN)
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.send_header("Content-Length", "2"); self.end_headers(); self.wfile.write(b"ok")
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""


def _wait(pred, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def spec_file(tmp_path: Path) -> Path:
    port = free_port_block(3)
    (tmp_path / "stubborn.py").write_text(STUBBORN)
    spec = {
        "name": "recovery",
        "policy": {"verify_timeout_s": 10, "ladder": ["restart", "replace", "escalate"]},
        "controller": {"store_url": f"sqlite:///{tmp_path / 'n.db'}", "workdir": str(tmp_path / "work")},
        "targets": [
            {
                "name": "stubborn",
                "command": [sys.executable, str(tmp_path / "stubborn.py"), "{port}"],
                "port": port,
                "stop_timeout_s": 4,
                "checks": [{"type": "http", "url": f"http://127.0.0.1:{port}/", "interval_s": 0.1, "timeout_s": 0.3}],
            }
        ],
    }
    path = tmp_path / "fleet.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


@pytest.fixture
def launched(spec_file: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
    store = Store.open(f"sqlite:///{spec_file.parent / 'n.db'}")
    for rec in store.processes():
        if psutil.pid_exists(rec.pid):
            os.killpg(rec.pid, signal.SIGKILL)


def _run(spec_file: Path, launched: list[subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
    log = (spec_file.parent / f"controller-{len(launched)}.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "novacron.cli", "run", "-c", str(spec_file)], stdout=log, stderr=subprocess.STDOUT
    )
    launched.append(proc)
    return proc


def test_controller_killed_mid_action_resumes_without_repeating_it(
    spec_file: Path, launched: list[subprocess.Popen[bytes]]
) -> None:
    store = Store.open(f"sqlite:///{spec_file.parent / 'n.db'}")
    first = _run(spec_file, launched)
    _wait(lambda: store.processes() != [] and _healthy(store), 20, "the target to run")
    service_pid = store.processes()[0].pid
    os.kill(service_pid, signal.SIGSTOP)  # a hang: the controller will restart it (slowly)
    _wait(lambda: any(r.status is ActionStatus.APPLYING for r in store.actions()), 20, "an action in flight")
    first.kill()  # SIGKILL mid-action
    first.wait()
    [inflight] = store.actions()
    assert inflight.status is ActionStatus.APPLYING

    _run(spec_file, launched)
    _wait(lambda: store.incidents()[0].status is IncidentStatus.RESOLVED, 30, "the incident to resolve")
    incident = store.incidents()[0]
    actions = store.actions(incident_id=incident.id)
    keys = [a.action.idempotency_key for a in actions]
    assert len(keys) == len(set(keys)), "no action key may be applied twice"
    assert store.action(inflight.action.id).status is ActionStatus.VERIFIED
    assert "reconciled after controller restart" in store.action(inflight.action.id).detail
    assert [e.kind for e in store.timeline(incident.id)].count("detected") == 1
    assert store.processes()[0].pid == service_pid, "the running process was adopted, not replaced"


def _healthy(store: Store) -> bool:
    rows = store.target_statuses()
    return bool(rows) and rows[0].health == "healthy"
