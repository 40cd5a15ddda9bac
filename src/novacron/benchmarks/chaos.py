"""``novacron bench chaos``: SIGKILL the controller at random instants around service crashes.

A fleet of small HTTP services (each records every start of itself in a shared file) runs
under a real ``novacron run``. Each trial SIGKILLs one service, waits a random instant in
``[0, window_ms]``, SIGKILLs the controller, starts a new one on the same store and waits
until the fleet is healthy again with no open incident. It then counts what must never
happen:

- ``faults_without_incident``: a crash that no incident recorded;
- ``faults_restarted_twice``: a crash after which the service was started more than once;
- ``ports_with_two_processes``: a port with two live service processes (an orphan);
- ``duplicate_keys`` / ``duplicate_incidents``: an action key stored twice, or one crash
  filed as two incidents;
- ``orphans_after_stop``: service processes still alive after a graceful stop at the end;

and reports how long the fleet took to be healthy after each controller restart, from
the new controller's spawn (``healthy_after_restart_s``) and from its first write to the
store, after Python's start-up (``healthy_after_controller_up_s``). Seeded: the same seed
kills at the same instants.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import yaml

from novacron.errors import InputError
from novacron.store import Store
from novacron.store.presence import presence

from ._stats import percentiles

__all__ = ["run_chaos"]

_SERVICE = Path(__file__).with_name("_chaos_service.py")
_SETTLE_TIMEOUT_S = 60.0  # generous: on a saturated host Python's start-up alone takes seconds
_POLL_S = 0.02


@dataclass
class _Fleet:
    root: Path
    spec: Path
    store_url: str
    starts: Path
    ports: dict[str, int]


def _fleet(root: Path, services: int) -> _Fleet:
    from novacron.demo.fleet import free_port_block

    first = free_port_block(services)
    starts = root / "starts.log"
    ports = {f"svc{i}": first + i for i in range(services)}
    store_url = f"sqlite:///{root / 'chaos.db'}"
    check = {"type": "http", "interval_s": 0.1, "timeout_s": 0.5}
    spec = {
        "name": "chaos",
        "policy": {
            # Crashes come every few seconds on purpose: rails meant for a flapping service
            # (quarantine, hourly cap, long backoff) would measure the rails, not recovery.
            "max_actions_per_target_per_hour": 100_000,
            "flap": {"threshold": 100_000},
            "backoff": {"base_s": 0.05, "cap_s": 1.0},
            "blast_radius": 1.0,
            "verify_timeout_s": 10,
        },
        "controller": {"store_url": store_url, "workdir": str(root / "work")},
        "targets": [
            {
                "name": name,
                "command": [sys.executable, str(_SERVICE), "{port}", str(starts)],
                "port": port,
                "start_timeout_s": 5,
                "stop_timeout_s": 2,
                "checks": [{**check, "url": f"http://127.0.0.1:{port}/health"}],
            }
            for name, port in ports.items()
        ],
    }
    path = root / "fleet.yaml"
    path.write_text(yaml.safe_dump(spec))
    return _Fleet(root, path, store_url, starts, ports)


@dataclass
class _ControllerProcess:
    fleet: _Fleet
    proc: subprocess.Popen[bytes] | None = None
    runs: int = 0

    def start(self) -> None:
        self.runs += 1
        log = (self.fleet.root / f"controller-{self.runs}.log").open("wb")
        cmd = [sys.executable, "-m", "novacron.cli", "run", "-c", str(self.fleet.spec), "--log-format", "json"]
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@dataclass
class _Tally:
    trials: int = 0
    faults_without_incident: int = 0
    faults_restarted_twice: int = 0
    ports_with_two_processes: int = 0
    duplicate_incidents: int = 0
    not_healthy_after_restart: int = 0
    healthy_after_restart: list[float] = field(default_factory=list)
    healthy_after_up: list[float] = field(default_factory=list)  # from the new controller's first write


def _settled(store: Store, fleet: _Fleet, since: float) -> bool:
    """Every target healthy as published by the new controller, and no open incident."""
    rows = store.target_statuses()
    fresh = [r for r in rows if r.updated_at >= since and r.health == "healthy"]
    return len(fresh) == len(fleet.ports) and not store.open_incidents()


def _wait(pred: Callable[[], bool], timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with contextlib.suppress(Exception):  # the store may be mid-write or locked for a moment
            if pred():
                return True
        time.sleep(_POLL_S)
    return False


def _starts(fleet: _Fleet) -> list[tuple[int, int, float]]:
    if not fleet.starts.exists():
        return []
    out = []
    for line in fleet.starts.read_text().splitlines():
        pid, port, at = line.split()
        out.append((int(pid), int(port), float(at)))
    return out


def _alive(pid: int, started: float) -> bool:
    try:
        proc = psutil.Process(pid)
        return proc.status() != psutil.STATUS_ZOMBIE and abs(proc.create_time() - started) < 2.0
    except psutil.Error:
        return False


def _live_by_port(fleet: _Fleet) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for pid, port, at in _starts(fleet):
        if _alive(pid, at):
            out.setdefault(port, []).append(pid)
    return out


def _victim_pid(store: Store, name: str) -> int | None:
    for rec in store.processes():
        if rec.target == name and rec.spawned:
            return rec.pid
    return None


def _trial(n: int, rng: random.Random, window_s: float, fleet: _Fleet, ctl: _ControllerProcess, store: Store) -> _Tally:
    """One crash, one controller SIGKILL, one restart; what went wrong in it."""
    out = _Tally(trials=1)
    names = sorted(fleet.ports)
    name = names[n % len(names)]
    pid = _victim_pid(store, name)
    if pid is None:
        raise InputError(f"no process of {name} in the store", where="bench chaos")
    crashed_at = time.time()
    os.kill(pid, signal.SIGKILL)
    time.sleep(rng.uniform(0.0, window_s))
    ctl.kill()
    restarted_at, t0 = time.time(), time.monotonic()
    ctl.start()
    if _wait(lambda: _settled(store, fleet, restarted_at), _SETTLE_TIMEOUT_S):
        out.healthy_after_restart.append(time.monotonic() - t0)
        record = presence(store).record
        if record is not None and record.started_at >= restarted_at:
            out.healthy_after_up.append(max(0.0, time.time() - record.started_at))
    else:
        out.not_healthy_after_restart = 1
    port = fleet.ports[name]
    spawns = [s for s in _starts(fleet) if s[1] == port and s[2] >= crashed_at]
    out.faults_restarted_twice = int(len(spawns) > 1)
    out.ports_with_two_processes = sum(len(pids) > 1 for pids in _live_by_port(fleet).values())
    filed = [i for i in store.incidents(limit=100_000) if i.target == name and i.opened_at >= crashed_at - 0.05]
    out.faults_without_incident = int(not filed)
    out.duplicate_incidents = max(0, len(filed) - 1)
    return out


def _add(total: _Tally, one: _Tally) -> None:
    for name in ("trials", "faults_without_incident", "faults_restarted_twice", "ports_with_two_processes"):
        setattr(total, name, getattr(total, name) + getattr(one, name))
    total.duplicate_incidents += one.duplicate_incidents
    total.not_healthy_after_restart += one.not_healthy_after_restart
    total.healthy_after_restart.extend(one.healthy_after_restart)
    total.healthy_after_up.extend(one.healthy_after_up)


def _duplicate_keys(store: Store) -> int:
    keys = [r.action.idempotency_key for r in store.actions(limit=1_000_000)]
    return len(keys) - len(set(keys))


def run_chaos(
    *, trials: int, window_ms: float, seed: int = 0, services: int = 4, root: Path | None = None
) -> dict[str, Any]:
    """Run the chaos trials and return the JSON-ready result."""
    if not 1 <= trials <= 10_000:
        raise InputError("must be between 1 and 10000", where="--trials")
    if not 0 <= window_ms <= 60_000:
        raise InputError("must be between 0 and 60000", where="--window-ms")
    if not 1 <= services <= 100:
        raise InputError("must be between 1 and 100", where="--services")
    with contextlib.ExitStack() as stack:
        if root is None:
            root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="novacron-chaos-")))
        return _run(trials, window_ms / 1000, seed, _fleet(root, services))


def _run(trials: int, window_s: float, seed: int, fleet: _Fleet) -> dict[str, Any]:
    store = Store.open(fleet.store_url)
    ctl = _ControllerProcess(fleet)
    total = _Tally()
    started = time.monotonic()
    try:
        ctl.start()
        if not _wait(lambda: _settled(store, fleet, 0.0), _SETTLE_TIMEOUT_S):
            raise InputError("the fleet did not become healthy under the first controller", where="bench chaos")
        rng = random.Random(seed)
        for n in range(trials):
            _add(total, _trial(n, rng, window_s, fleet, ctl, store))
        ctl.stop()
        orphans = sum(len(p) for p in _live_by_port(fleet).values())
        duplicate_keys = _duplicate_keys(store)
    finally:
        ctl.kill()
        for pids in _live_by_port(fleet).values():
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)
        store.close()
    return {
        "trials": total.trials,
        "window_ms": round(window_s * 1000, 1),
        "seed": seed,
        "services": len(fleet.ports),
        "faults_without_incident": total.faults_without_incident,
        "faults_restarted_twice": total.faults_restarted_twice,
        "ports_with_two_processes": total.ports_with_two_processes,
        "duplicate_keys": duplicate_keys,
        "duplicate_incidents": total.duplicate_incidents,
        "orphans_after_stop": orphans,
        "not_healthy_after_restart": total.not_healthy_after_restart,
        "healthy_after_restart_s": percentiles(total.healthy_after_restart, (50, 95)),
        # The same, less the new controller's own start-up (imports), which load stretches most.
        "healthy_after_controller_up_s": percentiles(total.healthy_after_up, (50, 95)),
        "elapsed_s": round(time.monotonic() - started, 1),
    }
