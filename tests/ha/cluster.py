"""Several `novacron run` processes on one PostgreSQL store, and a fleet of remote targets to share."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from novacron.store import Store, leases

from ..cli.runner import NOVACRON, cli, wait_for

__all__ = ["NOVACRON", "Cluster", "Node", "Remote", "cli", "remote_server", "remote_spec", "wait_for"]


@dataclass
class Remote:
    """The remote-target server (``python -m novacron.demo.remote``)."""

    proc: subprocess.Popen[str]
    base: str

    def fault(self, target: str) -> None:
        """Make ``target`` fail its checks until an action heals it."""
        httpx.post(f"{self.base}/fault/{target}").raise_for_status()

    def faulted(self) -> list[str]:
        """The targets faulted now (an action heals them)."""
        out: list[str] = httpx.get(f"{self.base}/faulted").json()
        return out

    def actions(self) -> list[dict[str, Any]]:
        """Every action applied so far."""
        out: list[dict[str, Any]] = httpx.get(f"{self.base}/actions").json()
        return out

    def summary(self) -> dict[str, Any]:
        """Counts: actions, duplicate keys, stale epochs, faulted targets."""
        out: dict[str, Any] = httpx.get(f"{self.base}/summary").json()
        return out


@contextlib.contextmanager
def remote_server(host: str = "127.0.0.1") -> Iterator[Remote]:
    """Start the remote-target server on a free port of ``host``; stop it afterwards."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "novacron.demo.remote", "--host", host], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        yield Remote(proc, f"http://{host}:{port}")
    finally:
        proc.kill()
        proc.wait()


def remote_spec(folder: Path, base: str, n: int, *, lease_s: float = 2.0, interval_s: float = 0.1) -> Path:
    """A spec of ``n`` remote targets served by ``base``."""
    spec = {
        "name": "ha",
        "policy": {"ladder": ["restart", "escalate"], "verify_timeout_s": 5, "blast_radius": 1.0},
        "controller": {"ha": {"lease_s": lease_s, "renew_s": lease_s / 8, "node_stale_s": lease_s}},
        "targets": [
            {
                "name": f"r{i}",
                "kind": "remote",
                "action_url": f"{base}/act",
                "checks": [
                    {"type": "http", "url": f"{base}/t/r{i}", "interval_s": interval_s, "timeout_s": 1, "failures": 2}
                ],
            }
            for i in range(n)
        ],
    }
    path = folder / "fleet.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


@dataclass
class Node:
    """One `novacron run` process."""

    node_id: str
    proc: subprocess.Popen[str]
    log: Path
    stopped: bool = False

    def lines(self) -> list[dict[str, Any]]:
        """Its JSON log lines so far."""
        out = []
        for line in self.log.read_text().splitlines():
            with contextlib.suppress(ValueError):
                out.append(json.loads(line))
        return out


@dataclass
class Cluster:
    """Controllers sharing one store."""

    spec: Path
    store_url: str
    folder: Path
    nodes: dict[str, Node] = field(default_factory=dict)
    prefixes: dict[str, list[str]] = field(default_factory=dict)  # node id → e.g. ``ip netns exec NS``

    def start(self, node_id: str, *extra: str) -> Node:
        """Start a controller with ``node_id`` in its own working folder; wait for its start line."""
        cwd = self.folder / node_id
        cwd.mkdir(exist_ok=True)
        log = cwd / "run.log"
        with log.open("w") as err:
            proc = subprocess.Popen(
                [
                    *self.prefixes.get(node_id, []),
                    *NOVACRON,
                    *("run", "-c", str(self.spec), "--store", self.store_url, "--node-id", node_id, *extra),
                ],
                stdout=subprocess.DEVNULL,
                stderr=err,
                text=True,
                cwd=cwd,
            )
        node = Node(node_id, proc, log)
        self.nodes[node_id] = node
        wait_for(
            lambda: '"novacron started"' in log.read_text() or proc.poll() is not None, f"{node_id} start", timeout=180
        )
        assert proc.poll() is None, log.read_text()[-2000:]
        return node

    def owner(self, target: str, shards: int = 64) -> str | None:
        """The node holding ``target``'s lease now, per the store."""
        store = Store.open(self.store_url)
        try:
            with store.engine.connect() as conn:
                rows = {r.shard: r for r in leases.leases(conn)}
        finally:
            store.close()
        row = rows.get(leases.shard_of(target, shards))
        return None if row is None or row.expires_at < time.time() else row.holder

    def signal(self, node_id: str, sig: signal.Signals) -> None:
        """Send ``sig`` to a controller."""
        os.kill(self.nodes[node_id].proc.pid, sig)

    def stop_all(self) -> None:
        """SIGCONT, then SIGTERM every controller; SIGKILL what does not stop."""
        for node in self.nodes.values():
            if node.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(node.proc.pid, signal.SIGCONT)
                node.proc.terminate()
        for node in self.nodes.values():
            try:
                node.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                node.proc.kill()
                node.proc.wait()
