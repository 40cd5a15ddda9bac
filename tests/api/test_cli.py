"""The commands: tokens, post-mortems, `novacron api` alone and `novacron run` with the API beside it."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import yaml

from novacron.model import FaultId, FaultKind, TargetId
from novacron.store import Store
from novacron.store.tokens import TokenStore

from .conftest import alert, bearer, webhook
from .servers import free_port

CLI = [sys.executable, "-m", "novacron.cli"]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60, check=False)


@contextmanager
def _serving(args: list[str], port: int) -> Iterator[str]:
    proc = subprocess.Popen([*CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                _out, err = proc.communicate(timeout=5)
                pytest.fail(f"server did not come up: {err[-2000:]}")
            time.sleep(0.1)
        yield base
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            pytest.fail("server did not stop on SIGTERM")


@pytest.mark.parametrize("blank", ["", "   "])
def test_tokens_create_refuses_an_empty_name_and_creates_nothing(tmp_path: Path, blank: str) -> None:
    url = f"sqlite:///{tmp_path / 'n.db'}"
    r = _cli("tokens", "create", "--role", "operator", "--name", blank, "--store", url)
    assert r.returncode == 2, r.stderr
    assert "error: --name: a token's name cannot be empty" in r.stderr
    assert r.stdout == "", "no secret is printed"
    assert not (tmp_path / "n.db").exists(), "not even the store is opened"


def test_tokens_create_prints_the_secret_once_and_stores_its_hash(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'n.db'}"
    typo = tmp_path / "n.bd"
    refused = _cli("tokens", "create", "--role", "operator", "--store", f"sqlite:///{typo}")
    assert refused.returncode == 2, refused.stderr
    assert f"error: --store: no store at {typo}" in refused.stderr
    assert "--create-store" in refused.stderr
    assert refused.stdout == "", "no secret is printed"
    assert not typo.exists(), "a mistyped store is not created"
    r = _cli("tokens", "create", "--role", "operator", "--name", "ci-bot", "--store", url, "--create-store")
    assert r.returncode == 0, r.stderr
    secret = r.stdout.strip()
    assert secret.startswith("nvc_")
    assert "shown only this once" in r.stderr
    store = Store.open(url)
    assert TokenStore(store).verify(secret) is not None
    listed = _cli("tokens", "list", "--store", url)
    assert "ci-bot" in listed.stdout
    assert secret not in listed.stdout
    [row] = json.loads(_cli("tokens", "list", "--store", url, "--json").stdout)
    assert row["name"] == "ci-bot"
    assert row["role"] == "operator"
    assert row["active"] is True
    assert _cli("tokens", "create", "--role", "root", "--store", url).returncode == 2
    assert _cli("tokens", "revoke", "ci-bot", "--store", url).returncode == 0
    assert TokenStore(store).verify(secret) is None
    store.close()


def test_incidents_postmortem_writes_markdown(tmp_path: Path) -> None:
    from novacron.clock import FakeClock
    from novacron.incidents.lifecycle import IncidentManager
    from novacron.model import Fault
    from novacron.telemetry import Metrics

    url = f"sqlite:///{tmp_path / 'n.db'}"
    store = Store.open(url)
    clock = FakeClock(start=1_800_000_000.0)
    manager = IncidentManager(store, clock, Metrics())
    fault = Fault(FaultId("f-1"), TargetId("db"), FaultKind.CRASH, detected_at=clock.now(), since=clock.now() - 0.2)
    inc, _ = manager.on_fault(fault)
    clock.advance(1.5)
    manager.resolve(inc, healed_by="restart")
    store.close()
    out = tmp_path / "pm.md"
    r = _cli("incidents", "postmortem", inc.id, "-o", str(out), "--store", url)
    assert r.returncode == 0, r.stderr
    text = out.read_text()
    assert text.startswith(f"# Post-mortem: incident {inc.id}")
    assert "MTTR (fault start → verified recovery): 1.7 s" in text
    missing = _cli("incidents", "postmortem", "inc-nope", "--store", url)
    assert missing.returncode == 2
    assert "incident id" in missing.stderr
    for bad, reason in ((tmp_path / "absent" / "pm.md", "No such file or directory"), (tmp_path, "Is a directory")):
        unwritable = _cli("incidents", "postmortem", inc.id, "-o", str(bad), "--store", url)
        assert unwritable.returncode == 2, unwritable.stderr
        assert f"error: --output {bad}: cannot write: {reason}" in unwritable.stderr
        assert "Traceback" not in unwritable.stderr


def test_run_serves_the_api_beside_the_controller_and_api_serves_it_alone(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'n.db'}"
    port = free_port()
    spec = {"name": "t", "controller": {"store_url": url, "workdir": str(tmp_path), "api_port": port}, "targets": []}
    (tmp_path / "fleet.yaml").write_text(yaml.safe_dump(spec))
    token = _cli("tokens", "create", "--role", "admin", "--store", url, "--create-store").stdout.strip()
    with _serving(["run", "-c", str(tmp_path / "fleet.yaml")], port) as base:
        assert httpx.get(f"{base}/health").json()["controller"] is True
        r = httpx.post(f"{base}/webhooks/alertmanager", json=webhook(alert()), headers=bearer(token))
        assert len(r.json()["opened"]) == 1
        assert httpx.post(f"{base}/autonomous/disable", headers=bearer(token)).status_code == 200
    port = free_port()
    with _serving(["api", "--store", url, "--port", str(port)], port) as base:
        assert httpx.get(f"{base}/health").json() == {
            "status": "ok",
            "controller": False,
            "autonomous": False,
            "config_version": None,
            "store": None,
        }
        assert len(httpx.get(f"{base}/incidents", headers=bearer(token)).json()) == 1
        assert httpx.post(f"{base}/autonomous/enable", headers=bearer(token)).status_code == 503
        assert "NovaCron" in httpx.get(f"{base}/dashboard").text
    assert (tmp_path / "n.db").exists()


def test_api_refuses_a_store_that_does_not_exist_instead_of_serving_a_new_empty_one(tmp_path: Path) -> None:
    missing = tmp_path / "mistyped" / "x.db"
    res = _cli("api", "--store", f"sqlite:///{missing}", "--port", str(free_port()))
    assert res.returncode == 3, res.stderr
    assert f"no store at {missing}: no controller has run here" in res.stderr
    assert "-c/--store" in res.stderr
    assert not missing.parent.exists(), "neither the folder nor a store is created"


def test_run_stops_with_a_clear_error_when_the_api_port_is_taken(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        spec = {"name": "t", "controller": {"store_url": f"sqlite:///{tmp_path / 'n.db'}", "workdir": str(tmp_path)}}
        (tmp_path / "fleet.yaml").write_text(yaml.safe_dump(spec))
        r = _cli("run", "-c", str(tmp_path / "fleet.yaml"), "--api-port", str(port))
    assert r.returncode == 2
    assert f"--api-port: port {port} on 127.0.0.1 is taken by pid" in r.stderr
