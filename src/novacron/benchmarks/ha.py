"""``novacron bench ha``: several `novacron run` processes on one PostgreSQL store, disrupted on purpose.

It starts a fresh database, the remote-target server (``python -m novacron.demo.remote``)
and ``controllers`` controllers with distinct node ids sharing its targets. Each trial
faults one target, then disrupts its owner — SIGKILL (restarted later under the same
node id), SIGSTOP (woken once another node acted), or ``pg_terminate_backend`` of every
controller session — and waits for the first action on the target. It measures:

- ``failover_ms``: from killing or pausing the owner to the first action by another node;
- ``duplicate_actions``: idempotency keys the target server saw applied twice;
- ``actions_without_lease``: actions that reached the server under an epoch older than one
  it had already seen on the shard (the resource-side fencing check);
- ``fenced_refusals``: steps the controllers refused themselves (``step refused`` lines);
- ``unowned_seconds_max``: the longest a shard had no valid lease (sampled every 100 ms);
- ``budget_violations``: samples with more actions in flight than the fleet-wide cap;
- ``lost_incidents``: faults that got no action within the trial timeout.

With ``scale_targets`` it then runs that many remote targets at 1 s probes for
``scale_s`` seconds and reads each controller's loop lag (``novacron_loop_lag_seconds``)
and the targets each one owns.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from novacron.benchmarks._stats import percentiles

__all__ = ["run_ha"]

_NOVACRON = [sys.executable, "-m", "novacron.cli"]
_TRIAL_TIMEOUT_S = 20.0
_MODES = ("sigkill", "sigstop", "terminate_backend")


@dataclass
class _Node:
    node_id: str
    proc: subprocess.Popen[bytes]
    log: Path


@dataclass
class _Bench:
    url: str
    admin: str
    folder: Path
    remote: str
    spec: Path
    nodes: dict[str, _Node] = field(default_factory=dict)
    logs: list[Path] = field(default_factory=list)

    def start(self, node_id: str) -> None:
        cwd = self.folder / node_id
        cwd.mkdir(exist_ok=True)
        log = cwd / f"run-{len(self.logs)}.log"
        self.logs.append(log)
        with log.open("wb") as err:
            proc = subprocess.Popen(
                [*_NOVACRON, "run", "-c", str(self.spec), "--store", self.url, "--node-id", node_id],
                stdout=subprocess.DEVNULL,
                stderr=err,
                cwd=cwd,
            )
        self.nodes[node_id] = _Node(node_id, proc, log)

    def stop_all(self) -> None:
        for node in self.nodes.values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(node.proc.pid, signal.SIGCONT)
                node.proc.terminate()
        for node in self.nodes.values():
            try:
                node.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                node.proc.kill()
                node.proc.wait()


def run_ha(
    *,
    controllers: int,
    trials: int,
    targets: int = 24,
    admin_url: str = "postgresql://postgres@127.0.0.1:5432/postgres",
    scale_targets: int = 0,
    scale_s: float = 30.0,
    seed: int = 1,
) -> dict[str, Any]:
    """Run the trials (and the scale phase) and return the figures."""
    rng = random.Random(seed)
    with _database(admin_url) as url, tempfile.TemporaryDirectory(prefix="novacron-ha-") as tmp, _remote() as remote:
        folder = Path(tmp)
        bench = _Bench(url, admin_url, folder, remote, _spec(folder, remote, targets, interval_s=0.2))
        try:
            out = _trials(bench, controllers, trials, targets, rng)
        finally:
            bench.stop_all()
        if scale_targets:
            scale_spec = _spec(folder, remote, scale_targets, interval_s=1.0, name="scale.yaml")
            scale = _Bench(url, admin_url, folder / "scale", remote, scale_spec)
            scale.folder.mkdir()
            try:
                out["scale"] = _scale(scale, controllers, scale_targets, scale_s)
            finally:
                scale.stop_all()
    return out


def _trials(b: _Bench, controllers: int, trials: int, targets: int, rng: random.Random) -> dict[str, Any]:
    ids = [f"n{i + 1}" for i in range(controllers)]
    for node_id in ids:
        b.start(node_id)
    sampler = _Sampler(b.url, shards=64, cap=max(1, int(0.5 * targets)))
    sampler.start()
    failover: list[float] = []
    lost = 0
    modes: dict[str, int] = {}
    try:
        _settled(b, set(ids), targets, timeout=120)
        sampler.armed = True
        for i in range(trials):
            mode = _MODES[i % len(_MODES)] if i < len(_MODES) else rng.choice(_MODES)
            modes[mode] = modes.get(mode, 0) + 1
            took = _trial(b, f"r{i % targets}", mode, ids, targets)
            if took is None:
                lost += 1
            elif mode != "terminate_backend":
                failover.append(took)
    finally:
        sampler.stop()
    summary = httpx.get(f"{b.remote}/summary").json()
    return {
        "controllers": controllers,
        "targets": targets,
        "trials": trials,
        "modes": modes,
        "failover_ms": percentiles(failover, (50, 99), scale=1000) if failover else None,
        "duplicate_actions": summary["duplicate_keys"],
        "actions_without_lease": summary["stale_epochs"],
        "fenced_refusals": _count_lines(b.logs, "step refused"),
        "unowned_seconds_max": round(sampler.unowned_max, 2),
        "budget_violations": sampler.over_cap,
        "lost_incidents": lost,
        "actions": summary["actions"],
    }


def _trial(b: _Bench, target: str, mode: str, ids: list[str], targets: int) -> float | None:
    """One fault and one disruption; seconds to the first action (by a new owner unless the store was hit)."""
    _settled(b, set(ids), targets, timeout=120)
    owner = _owner(b.url, target)
    httpx.post(f"{b.remote}/fault/{target}").raise_for_status()
    t0 = time.time()
    if mode == "terminate_backend":
        _terminate_backends(b.admin, b.url)
    else:
        os.kill(b.nodes[owner].proc.pid, signal.SIGKILL if mode == "sigkill" else signal.SIGSTOP)
    act = _first_action(b.remote, target, after=t0, not_by=None if mode == "terminate_backend" else owner)
    if mode == "sigstop":
        os.kill(b.nodes[owner].proc.pid, signal.SIGCONT)  # woken: fenced until it holds a lease again
    elif mode == "sigkill":
        b.nodes[owner].proc.wait()
        time.sleep(2.5)  # its heartbeat must be stale before the same node id may start again
        b.start(owner)
    return None if act is None else float(act["at"]) - t0


def _first_action(remote: str, target: str, *, after: float, not_by: str | None) -> dict[str, Any] | None:
    deadline = time.monotonic() + _TRIAL_TIMEOUT_S
    while time.monotonic() < deadline:
        for a in httpx.get(f"{remote}/actions").json():
            fence = a.get("fence") or {}
            if a["target"] == target and a["at"] > after and fence.get("node") != not_by:
                return dict(a)
        time.sleep(0.05)
    return None


def _scale(b: _Bench, controllers: int, targets: int, seconds: float) -> dict[str, Any]:
    ids = [f"s{i + 1}" for i in range(controllers)]
    for node_id in ids:
        b.start(node_id)
    _settled(b, set(ids), targets, timeout=300)
    time.sleep(seconds)
    owned = _owned(b.url)
    lags = {}
    for node_id, api in _apis(b.url).items():
        if node_id in ids and api:
            lags[node_id] = _lag_p99(httpx.get(f"{api}/metrics", timeout=10).text)
    counts = [owned.get(n, 0) for n in ids]
    mean = sum(counts) / len(counts)
    return {
        "targets": targets,
        "probe_interval_s": 1.0,
        "seconds": seconds,
        "targets_per_controller": dict(zip(ids, counts, strict=True)),
        "imbalance": round(max(abs(c - mean) for c in counts) / mean, 3) if mean else None,
        "loop_lag_p99_ms": lags,
    }


def _lag_p99(text: str) -> float | None:
    """The p99 of ``novacron_loop_lag_seconds`` as the smallest bucket bound holding 99 % (ms)."""
    buckets: list[tuple[float, float]] = []
    for line in text.splitlines():
        if line.startswith("novacron_loop_lag_seconds_bucket"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            buckets.append((float("inf") if le == "+Inf" else float(le), float(line.rsplit(" ", 1)[1])))
    if not buckets or buckets[-1][1] == 0:
        return None
    total = buckets[-1][1]
    for bound, count in buckets:
        if count >= 0.99 * total:
            return bound * 1000
    return None


# -- the store, read directly (the bench measures the controllers, it does not ask them) --
def _query(url: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        return list(conn.execute(sql, params).fetchall())


def _owner(url: str, target: str) -> str:
    from novacron.store.leases import shard_of

    rows = _query(url, "SELECT holder FROM ha_leases WHERE shard = %s", (shard_of(target, 64),))
    return str(rows[0][0])


def _owned(url: str) -> dict[str, int]:
    rows = _query(url, "SELECT node_id, targets FROM ha_nodes WHERE state = 'active'")
    return {str(n): int(t) for n, t in rows}


def _apis(url: str) -> dict[str, str | None]:
    return {str(n): a for n, a in _query(url, "SELECT node_id, api_url FROM ha_nodes")}


def _settled(b: _Bench, live: set[str], _targets: int, *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        dead = [n for n in live if b.nodes[n].proc.poll() is not None]
        if dead:
            raise RuntimeError(f"controller {dead[0]} exited: {b.nodes[dead[0]].log.read_text()[-600:]}")
        with contextlib.suppress(Exception):
            now = time.time()
            rows = _query(b.url, "SELECT holder, expires_at FROM ha_leases WHERE shard >= 0")
            if rows and all(h in live and e > now for h, e in rows):  # every shard validly held
                return
        time.sleep(0.2)
    raise RuntimeError(f"the controllers did not share the targets within {timeout:g}s")


def _terminate_backends(admin: str, url: str) -> None:
    db = url.rsplit("/", 1)[1]
    _query(admin, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (db,))


def _count_lines(logs: list[Path], text: str) -> int:
    return sum(p.read_text(errors="replace").count(text) for p in logs if p.exists())


class _Sampler(threading.Thread):
    """Every 100 ms: shards without a valid lease, and actions in flight against the cap."""

    def __init__(self, url: str, *, shards: int, cap: int) -> None:
        super().__init__(daemon=True)
        self.url, self.shards, self.cap = url, shards, cap
        self.armed = False
        self.unowned_max = 0.0
        self.over_cap = 0
        self._since: dict[int, float] = {}
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.wait(0.1):
            if self.armed:
                with contextlib.suppress(Exception):
                    self._sample()

    def _sample(self) -> None:
        now = time.time()
        for shard, holder, expires in _query(
            self.url, "SELECT shard, holder, expires_at FROM ha_leases WHERE shard >= 0"
        ):
            if holder is None or expires < now:
                start = self._since.setdefault(int(shard), now)
                self.unowned_max = max(self.unowned_max, now - start)
            else:
                self._since.pop(int(shard), None)
        inflight = _query(self.url, "SELECT count(*) FROM actions WHERE status IN ('applying', 'applied')")[0][0]
        self.over_cap += int(int(inflight) > self.cap)

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)


def _spec(folder: Path, remote: str, n: int, *, interval_s: float, name: str = "fleet.yaml") -> Path:
    spec = {
        "name": "bench-ha",
        "policy": {"ladder": ["restart", "escalate"], "verify_timeout_s": 5, "blast_radius": 0.5},
        "targets": [
            {
                "name": f"r{i}",
                "kind": "remote",
                "action_url": f"{remote}/act",
                "checks": [
                    {"type": "http", "url": f"{remote}/t/r{i}", "interval_s": interval_s, "timeout_s": 1, "failures": 2}
                ],
            }
            for i in range(n)
        ],
    }
    path = folder / name
    path.write_text(yaml.safe_dump(spec))
    return path


@contextlib.contextmanager
def _database(admin_url: str) -> Iterator[str]:
    import psycopg

    name = f"novacron_bench_ha_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + f"/{name}"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def _remote() -> Iterator[str]:
    proc = subprocess.Popen([sys.executable, "-m", "novacron.demo.remote"], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        yield f"http://127.0.0.1:{int(proc.stdout.readline())}"
    finally:
        proc.kill()
        proc.wait()
