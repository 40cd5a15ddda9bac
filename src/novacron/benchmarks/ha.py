"""``novacron bench ha``: several `novacron run` processes on one PostgreSQL store, disrupted on purpose.

The controllers start once and stay up across trials. Where network namespaces can be
made (root, iproute2, PostgreSQL's server binaries: ``benchmarks/_hosts.py``) every
controller runs on a host of its own (a namespace with a veth link) and talks to a
throw-away PostgreSQL server and the remote-target server (``python -m
novacron.demo.remote``) over that link; elsewhere they run side by side on the machine's
PostgreSQL and link cuts are left out (``link_cut`` says why).

Each trial faults one target and disrupts its owner once — SIGKILL (restarted at once
under the same node id after another node acted), SIGSTOP (SIGCONT after another node
acted), ``pg_terminate_backend`` of the owner's sessions, or its link taken down (back up
after another node acted) — and waits for the first action on the target. Meanwhile a
background thread faults other targets every ``fault_every_s``. It measures:

- ``failover_ms``: from disrupting the owner (SIGKILL, SIGSTOP, link cut) to the first action
  on the target by another node; ``recovery_ms`` the same for ``pg_terminate_backend``
  (any node, usually the owner after it reconnects);
- ``duplicate_actions``: idempotency keys the target server saw applied twice;
- ``actions_without_lease``: actions the target server accepted under an epoch older than
  one the store had already granted on that shard at least 100 ms earlier (the lease rows
  are sampled every 100 ms); ``refused_at_target`` those it refused itself (an epoch older
  than one it had seen, or arriving after the lease the fence vouched for);
- ``fenced_refusals``: steps the controllers refused themselves (``step refused`` lines);
- ``unowned_seconds_max``: the longest a shard had no valid lease (sampled every 100 ms);
- ``budget_violations``: samples with more targets under remediation than the fleet-wide cap;
- ``lost_incidents``: faults (trial or background) that no action healed: a trial target
  without an action within ``trial_timeout_s``, and targets still faulted at the end.

With ``scale_targets`` it then runs that many remote targets at 1 s probes on fresh
controllers (on the machine's PostgreSQL) and reads each one's loop lag
(``novacron_loop_lag_seconds``) and the targets it owns.
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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import yaml

from novacron.benchmarks import _hosts
from novacron.benchmarks._stats import percentiles

__all__ = ["MODES", "run_ha"]

_NOVACRON = [sys.executable, "-m", "novacron.cli"]
MODES = ("sigkill", "sigstop", "terminate_backend", "link_cut")
_SHARDS = 64
_APP = "novacron-bench"  # the bench's own sessions: pg_terminate_backend spares them


@dataclass
class _Node:
    node_id: str
    proc: subprocess.Popen[bytes]
    log: Path
    host: int | None


@dataclass
class _Bench:
    url: str
    admin: str
    folder: Path
    remote: str
    spec: Path
    hosts: _hosts.Hosts | None = None
    nodes: dict[str, _Node] = field(default_factory=dict)
    logs: list[Path] = field(default_factory=list)

    def start(self, node_id: str, host: int | None = None) -> None:
        cwd = self.folder / node_id
        cwd.mkdir(exist_ok=True)
        log = cwd / f"run-{len(self.logs)}.log"
        self.logs.append(log)
        prefix = [] if host is None or self.hosts is None else self.hosts.prefix(host)
        with log.open("wb") as err:
            proc = subprocess.Popen(
                [*prefix, *_NOVACRON, "run", "-c", str(self.spec), "--store", self.url, "--node-id", node_id],
                stdout=subprocess.DEVNULL,
                stderr=err,
                cwd=cwd,
            )
        self.nodes[node_id] = _Node(node_id, proc, log, host)

    def stop_all(self) -> None:
        if self.hosts is not None:
            for k in range(self.hosts.count):
                with contextlib.suppress(subprocess.CalledProcessError):
                    self.hosts.restore(k)
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
    max_seconds: float | None = None,
    modes: tuple[str, ...] = MODES,
    netns: bool = True,
    seed: int = 1,
    progress: bool = False,
) -> dict[str, Any]:
    """Run the trials (and the scale phase) and return the figures."""
    rng = random.Random(seed)
    why_not = _hosts.unavailable() if netns else "not asked for (--no-netns)"
    modes = tuple(m for m in modes if m != "link_cut" or why_not is None)
    out: dict[str, Any] = {}
    if trials:
        out = _run_trials(controllers, trials, targets, admin_url, max_seconds, modes, why_not, rng, progress=progress)
    if scale_targets:
        out["scale"] = run_scale(controllers, scale_targets, scale_s, admin_url=admin_url)
    return out


def _run_trials(
    controllers: int,
    trials: int,
    targets: int,
    admin_url: str,
    max_seconds: float | None,
    modes: tuple[str, ...],
    why_not: str | None,
    rng: random.Random,
    *,
    progress: bool,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with contextlib.ExitStack() as stack:
        hosts = stack.enter_context(_hosts.hosts(controllers)) if why_not is None else None
        address = "127.0.0.1" if hosts is None else hosts.address
        admin = admin_url if hosts is None else stack.enter_context(_hosts.private_postgres([address]))
        url = stack.enter_context(_database(admin))
        remote = stack.enter_context(_remote(address))
        keep = os.environ.get("NOVACRON_BENCH_KEEP")  # a folder to keep the controllers' logs in
        folder = Path(keep) if keep else Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="novacron-ha-")))
        folder.mkdir(parents=True, exist_ok=True)
        spec = _spec(folder, remote, targets, interval_s=0.2)
        bench = _Bench(url, admin, folder, remote, spec, hosts)
        try:
            out = _Trials(bench, controllers, targets, rng, progress=progress).run(trials, modes, max_seconds)
        finally:
            bench.stop_all()
        out["link_cut"] = "network namespaces with veth links" if why_not is None else f"left out: {why_not}"
        out["store"] = "a private PostgreSQL server reached over the links" if hosts else "PostgreSQL at --pg"
    return out


class _Trials:
    def __init__(self, b: _Bench, controllers: int, targets: int, rng: random.Random, *, progress: bool) -> None:
        self.b, self.rng, self.progress = b, rng, progress
        self.ids = [f"n{i + 1}" for i in range(controllers)]
        self.targets = [f"r{i}" for i in range(targets)]
        self.cap = _cap(targets)
        self.sampler = _Sampler(b.url, cap=self.cap)
        # One client and one connection for the whole run: a client made per request
        # (an SSL context loaded each time) took most of a trial's time on a loaded machine.
        self.http = httpx.Client(base_url=b.remote, timeout=10)
        self.db = _Reader(b.url)
        self.faulter = _Faulter(b.remote, self.targets, rng.randrange(1 << 30), _Reader(b.url))
        self.failover: dict[str, list[float]] = {}
        self.lost_trials = 0
        self.unhealed = 0
        self.modes: dict[str, int] = {}
        self.stopped_early: str | None = None  # why the run ended before its trials, if it did

    def run(self, trials: int, modes: tuple[str, ...], max_seconds: float | None) -> dict[str, Any]:
        b = self.b
        for k, node_id in enumerate(self.ids):
            b.start(node_id, k)
        self.sampler.start()
        done = 0
        began = time.monotonic()
        try:
            self._settled(timeout=180, balanced=True)
            self.sampler.armed = True
            self.faulter.start()
            order: list[str] = []
            while done < trials and (max_seconds is None or time.monotonic() - began < max_seconds):
                if not order:
                    order = list(modes)
                    self.rng.shuffle(order)
                try:
                    self._trial(order.pop())
                except RuntimeError as exc:  # the fleet did not come back: report the trials run
                    self.stopped_early = str(exc)[:300]
                    break
                done += 1
                if self.progress and done % 10 == 0:
                    print(f"trials {done}/{trials} · {time.monotonic() - began:.0f}s", file=sys.stderr, flush=True)
        finally:
            self.faulter.stop()
            if self.sampler.armed:
                self.unhealed = self._unhealed(timeout=30)
            self.sampler.stop()
        try:
            return self._figures(done, time.monotonic() - began)
        finally:
            self.http.close()
            self.db.close()

    def _figures(self, done: int, seconds: float) -> dict[str, Any]:
        summary = self.http.get("/summary").json()
        takeovers = [ms for mode, v in self.failover.items() if mode != "terminate_backend" for ms in v]
        recovery = self.failover.get("terminate_backend", [])
        return {
            "controllers": len(self.ids),
            "targets": len(self.targets),
            "trials": done,
            "seconds": round(seconds, 1),
            "modes": self.modes,
            "failover_ms": percentiles(takeovers, (50, 99), scale=1000) if takeovers else None,
            "failover_ms_by_mode": {
                m: percentiles(v, (50, 99), scale=1000)
                for m, v in self.failover.items()
                if v and m != "terminate_backend"
            },
            "recovery_ms": percentiles(recovery, (50, 99), scale=1000) if recovery else None,
            "duplicate_actions": summary["duplicate_keys"],
            "actions_without_lease": self._without_lease(),
            "refused_at_target": summary["stale_epochs"],
            "fenced_refusals": _count_lines(self.b.logs, "step refused"),
            "unowned_seconds_max": round(self.sampler.unowned_max, 2),
            "budget_cap": self.cap,
            "budget_violations": self.sampler.over_cap,
            "lost_incidents": self.lost_trials + self.unhealed,
            "lost_trial_faults": self.lost_trials,
            "unhealed_at_end": self.unhealed,
            "faults": self.faulter.faults + done,
            "actions": summary["actions"],
            "stopped_early": self.stopped_early,
        }

    def _trial(self, mode: str) -> None:
        b = self.b
        t_settle = time.monotonic()
        self._settled(timeout=120)
        settle_s = time.monotonic() - t_settle
        target, owner = self._pick()
        self.faulter.hold(target)
        node = b.nodes[owner]
        self.modes[mode] = self.modes.get(mode, 0) + 1
        self.http.post(f"/fault/{target}").raise_for_status()
        t0 = time.time()
        if mode == "terminate_backend":
            address = None if b.hosts is None or node.host is None else b.hosts.host_address(node.host)
            _terminate_backends(b.admin, b.url, node.proc.pid, address)
        elif mode == "link_cut":
            assert b.hosts is not None
            assert node.host is not None
            b.hosts.cut(node.host)
        else:
            os.kill(node.proc.pid, signal.SIGKILL if mode == "sigkill" else signal.SIGSTOP)
        state = _state(node.proc.pid) if mode == "sigstop" else None
        act = _first_action(
            self.http,
            target,
            after=t0,
            not_by=None if mode == "terminate_backend" else owner,
            slow=self._print_sessions if self.progress else None,
        )
        if mode == "sigstop":
            os.kill(node.proc.pid, signal.SIGCONT)  # woken: fenced until it holds a lease again
        elif mode == "link_cut":
            assert b.hosts is not None
            assert node.host is not None
            b.hosts.restore(node.host)
        elif mode == "sigkill":
            node.proc.wait()
            b.start(owner, node.host)  # a node id whose process died on this host is free at once
        self.faulter.release(target)
        if act is None:
            self.lost_trials += 1
        else:
            self.failover.setdefault(mode, []).append(float(act["at"]) - t0)
        if self.progress:
            took = None if act is None else round(float(act["at"]) - t0, 2)
            print(
                f"{time.strftime('%H:%M:%S', time.localtime(t0))}.{int(t0 * 1000) % 1000:03d} {mode} {owner}"
                f" (pid {node.proc.pid}{'' if state is None else ', ' + state}) {target}:"
                f" settled {settle_s:.1f}s, acted after {took}s",
                file=sys.stderr,
                flush=True,
            )

    def _print_sessions(self) -> None:
        with contextlib.suppress(Exception):
            print(f"no action after {_SLOW_S:g}s; the store's sessions:\n{_sessions(self.db.rows)}", file=sys.stderr)

    def _pick(self) -> tuple[str, str]:
        """A target that is healthy, not just faulted, and owned by a node; and that node."""
        from novacron.store.leases import assignment

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            owners = _holders(self.db.rows)
            live = _live(self.db.rows)
            faulted = set(self.http.get("/faulted").json()) | _busy(self.db.rows)
            choices = [t for t in self.targets if t not in faulted and self.faulter.cool(t)]
            self.rng.shuffle(choices)
            for target in choices:
                owner = owners.get(_shard(target))
                # not a shard about to move to a node that rejoined (a handover is no failover)
                if owner is not None and owner == assignment(_SHARDS, tuple(sorted(live))).get(_shard(target)):
                    return target, owner
            time.sleep(0.2)
        raise RuntimeError("no healthy owned target to fault within 30s")

    def _settled(self, *, timeout: float, balanced: bool = False) -> None:
        """Every shard validly held, by at least two nodes (``balanced``: each by the node it belongs to).

        Between trials a restarted or woken node may still be joining: it takes its share
        back while the next trial runs, which disrupts only nodes that hold shards. But two
        nodes must hold shards, which proves a peer is up: on a loaded machine a restarted
        controller takes seconds to start, and a trial that disrupted the one node holding
        every shard would leave no peer to fail over to.
        """
        from novacron.store.leases import assignment

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            dead = [n for n in self.ids if self.b.nodes[n].proc.poll() is not None]
            if dead:
                node = self.b.nodes[dead[0]]
                raise RuntimeError(f"controller {dead[0]} exited: {node.log.read_text(errors='replace')[-800:]}")
            with contextlib.suppress(Exception):
                now = time.time()
                rows = self.db.rows("SELECT shard, holder, expires_at FROM ha_leases WHERE shard >= 0")
                if (
                    len(rows) == _SHARDS
                    and len({h for _, h, _ in rows}) >= 2
                    and all(h in self.ids for _, h, _ in rows)
                    and all(
                        (not balanced or h == assignment(_SHARDS, tuple(self.ids))[s]) and e > now + 0.5
                        for s, h, e in rows
                    )
                ):
                    return
            time.sleep(0.1)
        raise RuntimeError(f"the controllers did not share the targets within {timeout:g}s")

    def _unhealed(self, *, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        faulted: list[str] = []
        while time.monotonic() < deadline:
            faulted = self.http.get("/faulted").json()
            if not faulted:
                return 0
            time.sleep(0.5)
        return len(faulted)

    def _without_lease(self) -> int:
        """Accepted actions under an epoch the store had replaced ≥ 100 ms before they arrived."""
        count = 0
        for a in self.http.get("/actions").json():
            fence = a.get("fence") or {}
            replaced = self.sampler.replaced_at(int(fence.get("shard", -1)), int(fence.get("epoch", -1)))
            count += int(replaced is not None and replaced + 0.1 < float(a["at"]))
        return count


def _state(pid: int) -> str:
    """The process's scheduler state a moment after a signal (``stopped`` once SIGSTOP took)."""
    try:
        proc = psutil.Process(pid)
        deadline = time.monotonic() + 0.5
        while proc.status() != psutil.STATUS_STOPPED and time.monotonic() < deadline:
            time.sleep(0.01)
        return str(proc.status())
    except psutil.NoSuchProcess:
        return "gone"


def _cap(targets: int) -> int:
    return max(1, targets // 4)


def _shard(target: str) -> int:
    from novacron.store.leases import shard_of

    return shard_of(target, _SHARDS)


def _first_action(
    http: httpx.Client, target: str, *, after: float, not_by: str | None, slow: Callable[[], None] | None = None
) -> dict[str, Any] | None:
    """The first action on ``target`` after ``after`` by a node other than ``not_by`` (``slow()`` once at 5 s)."""
    deadline = time.monotonic() + _TRIAL_TIMEOUT_S
    slow_at = time.monotonic() + _SLOW_S
    while time.monotonic() < deadline:
        for a in http.get(f"/actions/{target}").json():
            fence = a.get("fence") or {}
            if a["at"] > after and fence.get("node") != not_by:
                return dict(a)
        if slow is not None and time.monotonic() > slow_at:
            slow()
            slow = None
        time.sleep(0.05)
    return None


_SLOW_S = 5.0  # a trial without an action by then is printed with the store's sessions (--progress)


def _sessions(rows_of: Rows) -> str:
    """The store's sessions that are in a transaction or waiting: who holds up whom."""
    rows = rows_of(
        "SELECT pid, client_addr, application_name, state, wait_event_type, wait_event,"
        " round(extract(epoch FROM now() - xact_start)::numeric, 2), pg_blocking_pids(pid), left(query, 90)"
        " FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        " AND (xact_start IS NOT NULL OR wait_event_type = 'Lock')"
    )
    return "\n".join("  " + " | ".join(str(c) for c in row) for row in rows) or "  (no session in a transaction)"


_TRIAL_TIMEOUT_S = 20.0


class _Faulter(threading.Thread):
    """Faults a random healthy target every ``every_s`` (not one a trial holds, none twice within 15 s)."""

    def __init__(self, remote: str, targets: list[str], seed: int, db: _Reader, every_s: float = 1.0) -> None:
        super().__init__(daemon=True)
        self.remote, self.targets, self.every_s, self.db = remote, targets, every_s, db
        self.rng = random.Random(seed)
        self.faults = 0
        self._last: dict[str, float] = {}
        self._held: set[str] = set()
        self._lock = threading.Lock()
        self._halt = threading.Event()

    def cool(self, target: str) -> bool:
        with self._lock:
            return time.monotonic() - self._last.get(target, -1e9) > 15.0

    def hold(self, target: str) -> None:
        with self._lock:
            self._held.add(target)
            self._last[target] = time.monotonic()

    def release(self, target: str) -> None:
        with self._lock:
            self._held.discard(target)

    def run(self) -> None:
        import psycopg

        with httpx.Client(base_url=self.remote, timeout=5) as http:
            while not self._halt.wait(self.every_s):
                with contextlib.suppress(httpx.HTTPError, psycopg.Error):
                    faulted = set(http.get("/faulted").json()) | _busy(self.db.rows)
                    with self._lock:
                        now = time.monotonic()
                        free = [
                            t
                            for t in self.targets
                            if t not in faulted and t not in self._held and now - self._last.get(t, -1e9) > 15.0
                        ]
                        if not free:
                            continue
                        target = self.rng.choice(free)
                        self._last[target] = now
                    http.post(f"/fault/{target}").raise_for_status()
                    self.faults += 1

    def stop(self) -> None:
        self._halt.set()
        if self.is_alive():
            self.join(timeout=10)
        self.db.close()


def run_scale(controllers: int, targets: int, seconds: float, *, admin_url: str) -> dict[str, Any]:
    """``targets`` remote targets at 1 s probes shared by ``controllers`` controllers: loop lag and balance.

    Over the measured window it also reads each controller's and the target server's CPU
    (share of one core), how long their main threads were ready to run but waited for a
    core (``runnable_waiting_percent``, from ``/proc/PID/schedstat``: the part of the loop
    lag a busy machine causes), and the load average.
    """
    with (
        _database(admin_url) as url,
        _server("127.0.0.1") as (remote, server),
        tempfile.TemporaryDirectory(prefix="novacron-ha-scale-") as tmp,
    ):
        folder = Path(tmp)
        b = _Bench(url, admin_url, folder, remote, _spec(folder, remote, targets, interval_s=1.0))
        ids = [f"s{i + 1}" for i in range(controllers)]
        try:
            for node_id in ids:
                b.start(node_id)
            _wait_owned(b, ids, targets, timeout=600)
            apis = {n: a for n, a in _apis(url).items() if n in ids and a}
            before = {n: _metrics(a) for n, a in apis.items()}
            pids = {**{n: b.nodes[n].proc.pid for n in ids}, "server": server}
            load_before, cpu_before, waits_before = os.getloadavg()[0], _cpu(pids), _run_delay(pids)
            started = time.monotonic()
            time.sleep(seconds)  # the steady state: start-up and take-over are not counted
            elapsed = time.monotonic() - started
            cpu = _cpu_percent(cpu_before, _cpu(pids), elapsed)
            waits = _cpu_percent(waits_before, _run_delay(pids), elapsed)
            load_after = os.getloadavg()[0]
            owned = _owned(url)
            lags: dict[str, float | str | None] = {}
            within: dict[str, float | None] = {}
            long_gc: dict[str, float | None] = {}
            for node_id, api in apis.items():
                after, first = _metrics(api), before[node_id]
                if after is None or first is None:  # its loop did not get to answer
                    lags[node_id] = "no answer from /metrics within 30 s"
                    continue
                earlier = dict(_lag_buckets(first))
                window = [(le, c - earlier.get(le, 0.0)) for le, c in _lag_buckets(after)]
                lags[node_id], within[node_id] = _p99_said(window), _share_within(window, 0.05)
                gc_after, gc_first = _gc_pauses_over(after, 0.05), _gc_pauses_over(first, 0.05)
                long_gc[node_id] = None if gc_after is None or gc_first is None else gc_after - gc_first
        finally:
            b.stop_all()
    counts = [owned.get(n, 0) for n in ids]
    mean = sum(counts) / len(counts)
    return {
        "targets": targets,
        "probe_interval_s": 1.0,
        "seconds_measured": seconds,
        "targets_per_controller": dict(zip(ids, counts, strict=True)),
        "imbalance": round(max(abs(c - mean) for c in counts) / mean, 3) if mean else None,
        "loop_lag_p99_ms": lags,
        "loop_lag_within_50ms": within,
        "gc_pauses_over_50ms": long_gc,
        "cpu_percent": cpu,
        "runnable_waiting_percent": waits,
        "load_average": [round(load_before, 2), round(load_after, 2)],
    }


def _cpu(pids: dict[str, int]) -> dict[str, float]:
    """CPU seconds (user and system) each process has used so far."""
    out: dict[str, float] = {}
    for name, pid in pids.items():
        with contextlib.suppress(psutil.Error):
            times = psutil.Process(pid).cpu_times()
            out[name] = times.user + times.system
    return out


def _run_delay(pids: dict[str, int]) -> dict[str, float]:
    """Seconds each process's main thread has waited, runnable, for a core (Linux schedstat)."""
    out: dict[str, float] = {}
    for name, pid in pids.items():
        with contextlib.suppress(OSError, ValueError, IndexError):
            out[name] = int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9
    return out


def _cpu_percent(before: dict[str, float], after: dict[str, float], seconds: float) -> dict[str, float]:
    """Each process's CPU over ``seconds`` of wall time, as a percentage of one core."""
    return {n: round(100 * (after[n] - before[n]) / seconds, 1) for n in before if n in after and seconds > 0}


def _wait_owned(b: _Bench, ids: list[str], targets: int, *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        dead = [n for n in ids if b.nodes[n].proc.poll() is not None]
        if dead:
            raise RuntimeError(f"controller {dead[0]} exited: {b.nodes[dead[0]].log.read_text()[-800:]}")
        with contextlib.suppress(Exception):
            from novacron.store.leases import assignment

            owned = _owned(b.url)
            want = assignment(_SHARDS, tuple(ids))
            held = {
                s: h for s, h, _e in _query(b.url, "SELECT shard, holder, expires_at FROM ha_leases WHERE shard >= 0")
            }
            if sum(owned.get(n, 0) for n in ids) == targets and held == want:
                return
        time.sleep(0.5)
    raise RuntimeError(f"the controllers did not share the targets within {timeout:g}s")


def _metrics(api: str) -> str | None:
    try:
        return httpx.get(f"{api}/metrics", timeout=30).text
    except httpx.HTTPError:
        return None


def _gc_pauses_over(text: str, bound: float) -> float | None:
    """Collections that stopped the controller longer than ``bound`` (a bucket bound), all generations."""
    total = within = 0.0
    seen = False
    for line in text.splitlines():
        if not line.startswith("novacron_gc_pause_seconds_bucket"):
            continue
        seen = True
        le, count = line.split('le="', 1)[1].split('"', 1)[0], float(line.rsplit(" ", 1)[1])
        if le == "+Inf":
            total += count
        elif float(le) == bound:
            within += count
    return total - within if seen else None


def _lag_buckets(text: str) -> list[tuple[float, float]]:
    """The cumulative buckets of ``novacron_loop_lag_seconds``: (upper bound, count)."""
    buckets: list[tuple[float, float]] = []
    for line in text.splitlines():
        if line.startswith("novacron_loop_lag_seconds_bucket"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            buckets.append((float("inf") if le == "+Inf" else float(le), float(line.rsplit(" ", 1)[1])))
    return buckets


def _p99(buckets: list[tuple[float, float]]) -> float | None:
    """The smallest bucket bound holding 99 % of the samples (ms)."""
    if not buckets or buckets[-1][1] == 0:
        return None
    total = buckets[-1][1]
    for bound, count in buckets:
        if count >= 0.99 * total:
            return bound * 1000
    return None


def _p99_said(buckets: list[tuple[float, float]]) -> float | str | None:
    """:func:`_p99`, or beyond the largest finite bound said in words (JSON has no infinity)."""
    p99 = _p99(buckets)
    if p99 is None or p99 != float("inf"):
        return p99
    top = max((le for le, _c in buckets if le != float("inf")), default=0.0)
    return f"over {top * 1000:g} ms"


def _share_within(buckets: list[tuple[float, float]], bound: float) -> float | None:
    """The share of samples at or below ``bound`` seconds (a bucket bound)."""
    if not buckets or buckets[-1][1] == 0:
        return None
    held = max((c for le, c in buckets if le <= bound), default=0.0)
    return round(held / buckets[-1][1], 4)


def _lag_p99(text: str) -> float | None:
    """The p99 of ``novacron_loop_lag_seconds`` as the smallest bucket bound holding 99 % (ms)."""
    return _p99(_lag_buckets(text))


# -- the store, read directly (the bench measures the controllers, it does not ask them) --
def _connect(url: str) -> Any:
    import psycopg

    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    return psycopg.connect(dsn, autocommit=True, application_name=_APP, connect_timeout=5)


def _query(url: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with _connect(url) as conn:
        return list(conn.execute(sql, params).fetchall())


Rows = Callable[[str], list[tuple[Any, ...]]]


def _holders(rows_of: Rows) -> dict[int, str]:
    now = time.time()
    rows = rows_of("SELECT shard, holder, expires_at FROM ha_leases WHERE shard >= 0")
    return {int(s): str(h) for s, h, e in rows if h is not None and e > now + 0.5}


def _busy(rows_of: Rows) -> set[str]:
    """Targets under repair or waiting for a human: an open incident, or an action in flight.

    A new fault on such a target fails the running repair's verification, and the ladder
    escalates it to a human by design; a trial would count that as a lost incident.
    """
    rows = rows_of(
        "SELECT target FROM incidents WHERE status IN ('open', 'mitigating', 'needs_human')"
        " UNION SELECT target FROM actions WHERE status IN ('planned', 'applying', 'applied')"
        " AND created_at > extract(epoch FROM now()) - 30"
    )
    return {str(t) for (t,) in rows}


def _live(rows_of: Rows, stale_s: float = 2.0) -> list[str]:
    now = time.time()
    rows = rows_of("SELECT node_id, heartbeat_at FROM ha_nodes WHERE state = 'active'")
    return [str(n) for n, beat in rows if now - beat <= stale_s]


class _Reader:
    """One connection to the store for the bench's reads, opened again after an error."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._conn: Any = None

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        """The rows of ``sql``."""
        try:
            self._conn = self._conn or _connect(self.url)
            return list(self._conn.execute(sql).fetchall())
        except Exception:
            self.close()
            raise

    def close(self) -> None:
        """Drop the connection."""
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
        self._conn = None


def _owned(url: str) -> dict[str, int]:
    rows = _query(url, "SELECT node_id, targets FROM ha_nodes WHERE state = 'active'")
    return {str(n): int(t) for n, t in rows}


def _apis(url: str) -> dict[str, str | None]:
    return {str(n): a for n, a in _query(url, "SELECT node_id, api_url FROM ha_nodes")}


def _terminate_backends(admin: str, url: str, pid: int, address: str | None) -> None:
    """End the owner's sessions: those from its host's address, or from its process's ports."""
    db = url.rsplit("/", 1)[1]
    rows = _query(
        admin,
        "SELECT pid, host(client_addr), client_port FROM pg_stat_activity"
        " WHERE datname = %s AND application_name <> %s",
        (db, _APP),
    )
    ports = set() if address is not None else _client_ports(pid)
    for backend, addr, port in rows:
        if (address is not None and addr == address) or port in ports:
            _query(admin, "SELECT pg_terminate_backend(%s)", (backend,))


def _client_ports(pid: int) -> set[int]:
    import psutil

    with contextlib.suppress(psutil.Error):
        return {c.laddr.port for c in psutil.Process(pid).net_connections(kind="tcp") if c.laddr}
    return set()


def _count_lines(logs: list[Path], text: str) -> int:
    return sum(p.read_text(errors="replace").count(text) for p in logs if p.exists())


class _Sampler(threading.Thread):
    """Every 100 ms: shards without a valid lease, epochs granted, and targets under remediation against the cap."""

    def __init__(self, url: str, *, cap: int) -> None:
        super().__init__(daemon=True)
        self.url, self.cap = url, cap
        self.armed = False
        self.unowned_max = 0.0
        self.over_cap = 0
        self._since: dict[int, float] = {}
        self._granted: dict[tuple[int, int], float] = {}  # (shard, epoch) → first seen
        self._halt = threading.Event()

    def replaced_at(self, shard: int, epoch: int) -> float | None:
        """When an epoch newer than ``epoch`` was first seen on ``shard``."""
        newer = [at for (s, e), at in self._granted.items() if s == shard and e > epoch]
        return min(newer) if newer else None

    def run(self) -> None:
        conn: Any = None
        while not self._halt.wait(0.1):
            try:
                conn = conn or _connect(self.url)
                self._sample(conn)
            except Exception:
                with contextlib.suppress(Exception):
                    conn.close()
                conn = None
        if conn is not None:
            conn.close()

    def _sample(self, conn: Any) -> None:
        now = time.time()
        for shard, holder, expires, epoch in conn.execute(
            "SELECT shard, holder, expires_at, epoch FROM ha_leases WHERE shard >= 0"
        ).fetchall():
            self._granted.setdefault((int(shard), int(epoch)), now)
            if not self.armed:
                continue
            if holder is None or expires < now:
                start = self._since.setdefault(int(shard), now)
                self.unowned_max = max(self.unowned_max, now - start)
            else:
                self._since.pop(int(shard), None)
        if self.armed:
            busy = conn.execute(
                "SELECT count(DISTINCT target) FROM actions WHERE status IN ('applying', 'applied')"
                " AND created_at > %s",
                (now - 30.0,),
            ).fetchone()[0]
            self.over_cap += int(int(busy) > self.cap)

    def stop(self) -> None:
        self._halt.set()
        if self.is_alive():
            self.join(timeout=5)


def _spec(folder: Path, remote: str, n: int, *, interval_s: float) -> Path:
    spec = {
        "name": "bench-ha",
        "policy": {
            "ladder": ["restart", "escalate"],
            "verify_timeout_s": 5,
            "blast_radius": (_cap(n) + 0.5) / n,
            # many faults per target over a long run: the bench measures failover, not the flap rails
            "max_actions_per_target_per_hour": 100_000,
            "flap": {"threshold": 100_000, "window_s": 1},
            "backoff": {"base_s": 0},
        },
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
    path = folder / f"fleet-{n}.yaml"
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
def _remote(host: str) -> Iterator[str]:
    with _server(host) as (url, _pid):
        yield url


@contextlib.contextmanager
def _server(host: str) -> Iterator[tuple[str, int]]:
    """The remote-target server in a process of its own: (its URL, its pid)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "novacron.demo.remote", "--host", host], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        yield f"http://{host}:{int(proc.stdout.readline())}", proc.pid
    finally:
        proc.kill()
        proc.wait()
