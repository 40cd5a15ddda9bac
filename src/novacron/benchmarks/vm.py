"""``novacron bench vm``: real guests under the controller — crash → healthy, live migration, host failover.

Boots ``guests`` tiny guests (256 MiB each) on host ``a`` of three hosts, then measures:

- ``restart_ms``: a guest's QEMU is SIGKILLed; time until the controller reports it healthy
  again on a new QEMU (detection, the restart action, the boot, the checks), per crash;
  ``restart_phases_ms`` splits it (p50 of each, from the incident's timeline): ``detect``
  (kill → incident), ``decide`` (→ restart applying), ``launch`` (→ the new QEMU's QMP
  answers), ``boot`` (→ verified healthy: the guest's boot and its first passing checks);
- ``warm_restart_ms``: the same for one more guest, ``w0`` on host ``b``, with
  ``vm.restart: warm``: its QEMU is SIGKILLed once its state is saved, and a new QEMU
  resumes it from that state. Only restarts that were warm restores count there (the
  action's recorded kind); any that fell back to a cold boot are listed with their reason
  in ``warm_restart_fallbacks``. ``warm_restart_phases_ms``: ``detect``, ``decide``,
  ``restore`` (→ the restore applied: QEMU started, the state loaded, the ports taken;
  split into ``launch`` and ``load`` as the action measured them) and ``checks`` (→
  verified healthy: the resumed guest's first passing checks);
- ``migration``: live migrations of one guest back and forth between hosts ``a`` and ``b``
  while a client reads its health page every 100 ms: QEMU's total time and downtime, the
  forward hand-over, bytes sent, and the client's failed reads and longest gap — and the
  failed reads overlapping no switch-over window (the guest's last pause and the ports'
  hand-over), which should be none;
- ``host_failover_s``: host ``a`` fails (all its QEMUs are SIGKILLed at once); time until
  the controller has noticed it by itself and every guest it held is healthy on the other
  hosts, restarted there by priority through the executor.

The accelerator is whatever the machine gives (KVM when usable, else TCG) and is reported.
"""

from __future__ import annotations

import asyncio
import os
import signal
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx

from novacron.actuators.qemu_guest import build_guest, guest_target
from novacron.model import ActionKind, Health
from novacron.runtime.controller import Controller
from novacron.settings import parse_spec

__all__ = ["run_vm_bench"]

_BOOT_S = 600.0
WARM_GUEST = "w0"  # the guest whose crashes are restored warm
_MEMORY_MIB = 256
_SLACK_S = 0.05


def _free_ports(n: int) -> list[int]:
    import socket

    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def _spec(workdir: Path, guests: int) -> Any:
    guest = build_guest()
    *ports, warm_port = _free_ports(guests + 1)
    targets = [
        guest_target(f"g{i}", port, guest, host="a", memory_mib=_MEMORY_MIB, priority=guests - i)
        for i, port in enumerate(ports)
    ]
    targets.append(guest_target(WARM_GUEST, warm_port, guest, host="b", memory_mib=_MEMORY_MIB, restart="warm"))
    return parse_spec(
        {
            "name": "bench-vm",
            "policy": {
                "verify_timeout_s": _BOOT_S,
                "backoff": {"base_s": 0.05},
                "max_actions_per_target_per_hour": 1000,
                # Every kill is a crash on purpose: the fifth within 5 minutes must not quarantine the guest.
                "flap": {"threshold": 1000},
            },
            "controller": {"store_url": f"sqlite:///{workdir / 'bench.db'}", "workdir": str(workdir)},
            "hosts": [{"name": h, "memory_mib": 4096, "cpus": 16} for h in ("a", "b", "c")],
            "targets": [t.model_dump(mode="json") for t in targets],
        }
    )


async def _until(pred: Callable[[], bool], timeout: float = _BOOT_S) -> None:
    async with asyncio.timeout(timeout):
        while not pred():  # noqa: ASYNC110 - the controller's status is polled, as a client would
            await asyncio.sleep(0.02)


def _healthy(ctl: Controller, names: list[str]) -> bool:
    views = {v.target: v for v in ctl.status()}
    return all(views[n].health is Health.HEALTHY and views[n].incident is None for n in names)


def _quantiles(samples: list[float]) -> dict[str, float | int]:
    if not samples:
        return {"n": 0}
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"p50": round(statistics.median(ordered), 1), "p95": round(p95, 1), "n": len(ordered)}


# Where a crash → healthy goes, from the incident's timeline: kill → detected → restart
# asked → QEMU up (its QMP answers) → verified healthy (the guest's boot and its checks).
_PHASES = (("detect", "detected"), ("decide", "action_started"), ("launch", "action_finished"), ("boot", "verified"))


async def _restarts(ctl: Controller, target: str, n: int) -> tuple[list[float], dict[str, list[float]]]:
    out = []
    phases: dict[str, list[float]] = {name: [] for name, _kind in _PHASES}
    for _ in range(n):
        ms, timeline = await _crash(ctl, target)
        out.append(ms)
        for name, value in _phases(timeline, _PHASES, ms).items():
            phases[name].append(value)
    return out, phases


# A warm restore's phases: kill → detected → restart asked → restored (QEMU up, state
# loaded, ports taken) → verified healthy (the resumed guest's first passing checks).
_WARM_PHASES = (
    ("detect", "detected"),
    ("decide", "action_started"),
    ("restore", "action_finished"),
    ("checks", "verified"),
)


async def _warm_restarts(ctl: Controller, target: str, n: int) -> dict[str, Any]:
    """Crash → healthy for a warm guest: only the restarts that were warm restores are timed as such."""
    await _until(lambda: ctl.actuator.vms.warm.saved(target) is not None, timeout=120)
    saved = await ctl.actuator.vms.warm.wait_saved(target)
    out: list[float] = []
    phases: dict[str, list[float]] = {name: [] for name, _kind in (*_WARM_PHASES, ("launch", ""), ("load", ""))}
    fallbacks: list[dict[str, Any]] = []
    for _ in range(n):
        ms, timeline = await _crash(ctl, target)
        finished = next((e for e in timeline if e.kind == "action_finished"), None)
        how = dict((finished.data.get("restarts") or {}).get("0", {})) if finished is not None else {}
        if how.get("kind") != "warm":
            fallbacks.append({"ms": round(ms, 1), "kind": how.get("kind"), "reason": how.get("fallback")})
            # A cold boot saves the state again once healthy: wait for it before the next kill.
            await _until(lambda: ctl.actuator.vms.warm.saved(target) is not None, timeout=120)
            continue
        out.append(ms)
        for name, value in _phases(timeline, _WARM_PHASES, ms).items():
            phases[name].append(value)
        phases["launch"].append(float(how["launch_ms"]))
        phases["load"].append(float(how["load_ms"]))
    return {
        "warm_restart_ms": _quantiles(out),
        "warm_restart_phases_ms": {name: _quantiles(ms)["p50"] if ms else None for name, ms in phases.items()},
        "warm_restart_fallbacks": fallbacks,
        "warm_state_bytes": saved.bytes if saved is not None else None,
        "warm_state_save_ms": saved.save_ms if saved is not None else None,
    }


async def _crash(ctl: Controller, target: str) -> tuple[float, list[Any]]:
    """SIGKILL the guest's QEMU; the time until it is healthy again (ms) and the incident's timeline."""
    [pid] = ctl.actuator.pids(target)
    started, killed = time.monotonic(), time.time()
    os.kill(pid, signal.SIGKILL)
    await _until(lambda p=pid: ctl.actuator.pids(target) not in ((), (p,)) and _healthy(ctl, [target]))  # type: ignore[misc]
    ms = (time.monotonic() - started) * 1000
    incident = next((i for i in ctl.store.incidents() if i.target == target and i.opened_at >= killed), None)
    timeline = list(ctl.store.timeline(incident.id)) if incident is not None else []
    return ms, [replace(e, time=e.time - killed) for e in timeline]


def _phases(timeline: list[Any], steps: tuple[tuple[str, str], ...], total_ms: float) -> dict[str, float]:
    """One restart's phases (ms) from its incident's timeline (times from the kill)."""
    seen: dict[str, float] = {}
    for event in timeline:
        seen.setdefault(event.kind, event.time)
    out: dict[str, float] = {}
    before = 0.0
    for name, kind in steps:
        if kind not in seen:
            return out
        out[name] = (seen[kind] - before) * 1000
        before = seen[kind]
    return out


class _Reader:
    """A client reading a guest's health page every 100 ms (light load), counting failures."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.failed = 0
        self.failures: list[tuple[float, float, str]] = []  # (sent, failed) monotonic and the error, per failed read
        self.longest_gap_ms = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        gap_start: float | None = None
        with httpx.Client(timeout=2) as client:
            while not self._stop.is_set():
                now = time.monotonic()
                try:
                    client.get(self.url).raise_for_status()
                    if gap_start is not None:
                        self.longest_gap_ms = max(self.longest_gap_ms, (now - gap_start) * 1000)
                    gap_start = None
                except httpx.HTTPError as exc:
                    self.failed += 1
                    self.failures.append((now, time.monotonic(), type(exc).__name__))
                    gap_start = now if gap_start is None else gap_start
                time.sleep(0.1)

    def __enter__(self) -> _Reader:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


async def _migrations(ctl: Controller, target: str, n: int) -> dict[str, Any]:
    figures: dict[str, list[float]] = {"total_ms": [], "downtime_ms": [], "handover_ms": [], "bytes": []}
    port = ctl.spec.target(target).port
    failures: list[str] = []
    windows: list[tuple[float, float]] = []
    with _Reader(f"http://127.0.0.1:{port}/health") as reader:
        await asyncio.sleep(1.0)
        for i in range(n):
            result = await ctl.heal(
                target, ActionKind.VM_MIGRATE, who="bench", params={"to": "b" if i % 2 == 0 else "a"}
            )
            data = dict(result.outcome.data) if result.outcome else {}
            if data.get("mode") != "live":
                failures.append(result.detail)
                continue
            for key, values in figures.items():
                values.append(float(data[key]))
            windows.append((float(data["switch_window_monotonic"][0]), float(data["switch_window_monotonic"][1])))
            await asyncio.sleep(1.0)
    return {
        "total_ms": _quantiles(figures["total_ms"]),
        "downtime_ms": _quantiles(figures["downtime_ms"]),
        "handover_ms": _quantiles(figures["handover_ms"]),
        "bytes": int(statistics.median(figures["bytes"])) if figures["bytes"] else 0,
        "client_failed_reads": reader.failed,
        # A failed read overlapping no switch-over (pause, last copy, ports handed over) is a real miss.
        **_outside(reader.failures, windows),
        "client_longest_gap_ms": round(reader.longest_gap_ms, 1),
        "failed": failures,
    }


def _outside(failures: list[tuple[float, float, str]], windows: list[tuple[float, float]]) -> dict[str, Any]:
    """The failed reads that overlap no switch-over window: how many, and each one's error and timing.

    ``sent_ms`` is when the read was sent, from the end of the switch-over before it
    (negative: before the first one), ``took_ms`` how long it took to fail.
    """
    misses = []
    for sent, failed, error in failures:
        if any(sent <= w1 + _SLACK_S and failed >= w0 - _SLACK_S for w0, w1 in windows):
            continue
        before = [w1 for _w0, w1 in windows if w1 <= sent]
        ref = max(before) if before else min((w0 for w0, _w1 in windows), default=sent)
        misses.append({"error": error, "sent_ms": round((sent - ref) * 1000), "took_ms": round((failed - sent) * 1000)})
    return {"client_failed_reads_outside_switchover": len(misses), "client_failures_outside_switchover": misses}


async def _failover(ctl: Controller, names: list[str]) -> dict[str, Any]:
    """Host a fails: all its QEMUs are SIGKILLed at once; the controller notices and moves its guests."""
    on_a = [n for n in names if ctl.actuator.vms.host_of(n) == "a"]
    pids = {n: ctl.actuator.vms.pid_of(n, 0) for n in on_a}
    started = time.monotonic()
    for pid in pids.values():
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
    await _until(
        lambda: _healthy(ctl, on_a) and all(ctl.actuator.vms.pid_of(n, 0) not in (None, pids[n]) for n in on_a)
    )
    moves = [
        a for a in ctl.store.actions() if a.action.kind == ActionKind.VM_MIGRATE and a.created_at >= _wall(started)
    ]
    return {
        "host_failover_s": round(time.monotonic() - started, 2),
        "failover_guests": len(on_a),
        "failover_detected_by": ctl.hostwatch.failed.get("a", "not detected"),
        "placed_on": {n: ctl.actuator.vms.host_of(n) for n in on_a},
        "failover_actions": [a.status.value for a in moves],
    }


def _wall(monotonic: float) -> float:
    return time.time() - (time.monotonic() - monotonic)


async def _bench(workdir: Path, *, guests: int, restarts: int, migrations: int) -> dict[str, Any]:
    ctl = Controller(_spec(workdir, guests))
    names = [t.name for t in ctl.spec.targets]
    cold = [n for n in names if n != WARM_GUEST]
    booted = time.monotonic()
    await ctl.start()
    try:
        await _until(lambda: _healthy(ctl, names))
        boot_s = time.monotonic() - booted
        restart, phases = await _restarts(ctl, names[0], restarts)
        warm = await _warm_restarts(ctl, WARM_GUEST, restarts)
        migration = await _migrations(ctl, cold[-1], migrations)
        await _until(lambda: _healthy(ctl, names))
        failover = await _failover(ctl, names)
        accel = ctl.actuator.vms.accel[names[0]]
    finally:
        await ctl.stop()
    return {
        "accel": accel.name,
        "accel_reason": accel.reason,
        "guests": guests,
        "memory_mib": _MEMORY_MIB,
        "first_boot_s": round(boot_s, 1),
        "restart_ms": _quantiles(restart),
        "restart_phases_ms": {name: _quantiles(ms)["p50"] if ms else None for name, ms in phases.items()},
        **warm,
        "migration": migration,
        **failover,
    }


def run_vm_bench(workdir: Path, *, guests: int = 4, restarts: int = 3, migrations: int = 6) -> dict[str, Any]:
    """Run the benchmark in ``workdir`` and return its figures (with the load average at the end)."""
    before = [round(x, 2) for x in os.getloadavg()]
    result = asyncio.run(_bench(workdir, guests=guests, restarts=restarts, migrations=migrations))
    result["load_avg_start"] = before
    result["load_avg"] = [round(x, 2) for x in os.getloadavg()]
    return result
