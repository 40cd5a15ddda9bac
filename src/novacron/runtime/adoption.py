"""Start-up reconciliation of local processes: adopt what runs, kill strays, report what died.

A controller can be killed at any instant, including between spawning a replica and
storing its pid. The actuator therefore journals every spawn twice (see
:class:`~novacron.actuators.process.SpawnJournal`): the intent with a fresh nonce before
the spawn, the pid right after; every child carries its nonce and the store's fleet id
in its environment. On start this module:

- adopts, for every journaled replica, the process that carries its nonce (or, for a
  row written before nonces existed, the stored pid if it is still the same process);
- kills strays: session leaders that carry this fleet's id but no row claims (a second
  process for one replica can never stay up beside the adopted one);
- reports the replicas that were journaled but are gone. They died while nobody watched,
  so each becomes a crash fault that goes through the executor like any other, never a
  silent respawn that would leave no incident and be restarted again by a resumed ladder.

Replicas with no row at all were never started (first start, or a graceful stop cleared
them) and are started as usual.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import psutil

from novacron.actuators.process import ENV_FLEET, ENV_NONCE, ProcessActuator
from novacron.store import ProcessRecord, Store
from novacron.store.guard import GuardedStore
from novacron.telemetry import get_logger

__all__ = ["MISSING_DETAIL", "StartReport", "StoreJournal", "end_process", "fleet_id", "reconcile"]

MISSING_DETAIL = "not running when the controller started: it exited while no controller watched it"
_FLEET_KEY = "process_fleet_id"
_STRAY_WAIT_S = 3.0
_DURABLE_WAIT_S = 2.0


class StoreJournal:
    """The actuator's spawn journal, kept in the store's ``processes`` table."""

    def __init__(self, store: Store) -> None:
        """Journal into ``store``."""
        self._store = store

    def intend(self, target: str, replica: int, port: int | None, nonce: str) -> None:
        """Queue the intent (pid 0); :meth:`settle` makes it durable before the spawn."""
        self._store.set_process(ProcessRecord(target, replica, 0, 0.0, port, nonce))

    async def settle(self) -> None:
        """Wait, on the loop and without blocking it, until what was journaled is in the store.

        A failing store is not waited for: healing goes on (see :meth:`GuardedStore.settle`).
        """
        if isinstance(self._store, GuardedStore):
            await self._store.settle(_DURABLE_WAIT_S)

    def spawned(self, target: str, replica: int, pid: int, create_time: float, port: int | None, nonce: str) -> None:
        """Queue the pid right after the spawn.

        Not waited for: the intent's nonce already names the child, so a controller that
        dies before this row lands still adopts it; nothing that follows depends on it.
        """
        self._store.set_process(ProcessRecord(target, replica, pid, create_time, port, nonce))

    def forget(self, target: str, replica: int) -> None:
        """Drop the replica's row."""
        self._store.remove_process(target, replica)


def fleet_id(store: Store, *, now: float) -> str:
    """This store's fleet id (made once): marks the environment of every child it spawns."""
    current = store.get_setting(_FLEET_KEY)
    if isinstance(current, str) and current:
        return current
    made = uuid.uuid4().hex
    store.put_setting(_FLEET_KEY, made, now=now)
    return made


@dataclass(frozen=True, slots=True)
class _Found:
    pid: int
    create_time: float


@dataclass(slots=True)
class StartReport:
    """What start-up reconciliation did."""

    adopted: list[tuple[str, int, int]] = field(default_factory=list)  # (target, replica, pid)
    missing: list[tuple[str, int]] = field(default_factory=list)
    strays: list[int] = field(default_factory=list)
    guests: list[tuple[str, int, int]] = field(default_factory=list)  # QEMUs left running: (target, replica, pid)


def reconcile(
    store: Store,
    actuator: ProcessActuator,
    desired: Mapping[str, int],
    fleet: str,
    *,
    theirs: Callable[[str], bool] | None = None,
    guests: Mapping[str, int] | None = None,
) -> StartReport:
    """Adopt journaled replicas, kill strays of ``fleet``, and list the replicas found dead.

    ``theirs``: with several controllers on one store, the targets another node runs; their
    rows are left alone. ``guests``: the vm targets and their replicas; a journaled guest
    whose QEMU still runs is listed in ``report.guests`` (spared, for the QEMU actuator to
    reattach, which is asynchronous), one whose QEMU is gone loses its row and boots anew.
    """
    found = _fleet_processes(fleet)
    report = StartReport()
    claimed: set[int] = set()
    for rec in store.processes():
        if theirs is not None and theirs(rec.target):
            continue
        if guests is not None and rec.target in guests and rec.replica < guests[rec.target]:
            guest = _locate(rec, found) if rec.nonce else None
            if guest is not None:
                claimed.add(guest.pid)
                report.guests.append((rec.target, rec.replica, guest.pid))
            else:
                store.remove_process(rec.target, rec.replica)
            continue
        if rec.target not in desired or rec.replica >= desired[rec.target]:
            store.remove_process(rec.target, rec.replica)  # its process, if any, is a stray now
            continue
        proc = _locate(rec, found)
        if proc is not None and actuator.adopt(rec.target, rec.replica, proc.pid, proc.create_time):
            claimed.add(proc.pid)
            report.adopted.append((rec.target, rec.replica, proc.pid))
            if proc.pid != rec.pid:  # the intent's child, found by its nonce: store its pid now
                store.set_process(dataclasses.replace(rec, pid=proc.pid, create_time=proc.create_time))
        else:
            report.missing.append((rec.target, rec.replica))
    report.strays = _kill([f.pid for f in found.values() if f.pid not in claimed])
    log = get_logger(component="adoption")
    for target, replica, pid in report.adopted:
        log.info("adopted process", target=target, replica=replica, pid=pid)
    for target, replica in report.missing:
        log.warning("replica found dead at start", target=target, replica=replica)
    if report.strays:
        log.warning("killed stray processes", pids=report.strays)
    return report


def _locate(rec: ProcessRecord, found: Mapping[str, _Found]) -> _Found | None:
    if rec.nonce and rec.nonce in found:
        return found[rec.nonce]
    if rec.spawned and not rec.nonce:
        return _Found(rec.pid, rec.create_time)  # a row from before spawn nonces: adopt() checks it is alive
    return None


def _fleet_processes(fleet: str) -> dict[str, _Found]:
    """Live session leaders whose environment carries ``fleet``, by their spawn nonce."""
    out: dict[str, _Found] = {}
    for proc in psutil.process_iter(["pid", "environ", "create_time", "status"]):
        env = proc.info["environ"] or {}
        if env.get(ENV_FLEET) != fleet or proc.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        with contextlib.suppress(OSError):
            # Children of a replica inherit its environment; the replica is the session leader.
            if os.getsid(proc.pid) == proc.pid and env.get(ENV_NONCE):
                out[env[ENV_NONCE]] = _Found(proc.pid, proc.info["create_time"])
    return out


def end_process(pid: int) -> None:
    """SIGKILL one left-over process group and wait (bounded) until it is gone."""
    _kill([pid])


def _kill(pids: list[int]) -> list[int]:
    """SIGKILL each pid's process group and wait (bounded) until the leaders are gone."""
    procs = []
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
        with contextlib.suppress(psutil.Error):
            procs.append(psutil.Process(pid))
    psutil.wait_procs(procs, timeout=_STRAY_WAIT_S)
    return pids
