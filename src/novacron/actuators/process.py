"""Local processes: start, stop, restart, replace and scale the replicas of ``process`` targets.

Each replica runs in its own session (process group) so a stop reaches its children too,
and its output goes to ``<log_dir>/<target>-<replica>.log``. Exits are seen through
:class:`~novacron.sensors.process.ExitWatcher` and reported to a listener, which is told
whether the exit was expected (we stopped it) or a crash.

A spawn is journaled in two steps so that a controller killed at any instant leaves a
trace: the intent (target, replica, port and a fresh nonce, which the child also gets in
its environment as ``NOVACRON_NONCE``) is written *before* the process exists, the pid
right after. A restarted controller finds the child by its nonce even when the pid never
reached the store. A replica is never spawned onto a port that something already listens
on: the spawn is refused and reported as a start failure naming the holder.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import uuid
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

import psutil

from novacron.actuators.cgroups import Cgroups
from novacron.actuators.reallocate import Reallocator
from novacron.clock import Clock
from novacron.errors import ActuatorError
from novacron.model import EMPTY, Action, ActionKind, Outcome, TargetId, TargetState
from novacron.sensors.process import ExitWatcher
from novacron.settings import FleetSpec, TargetSpec

__all__ = [
    "ENV_FLEET",
    "ENV_NONCE",
    "PortHeldError",
    "ProcessActuator",
    "ProcessListener",
    "SpawnJournal",
    "expand_target_vars",
    "port_holder",
    "replica_port",
]

ENV_NONCE = "NOVACRON_NONCE"  # one per spawn: how a restarted controller recognises the child
ENV_FLEET = "NOVACRON_FLEET"  # one per store: every child of this fleet carries it
_PORT_FREE_WAIT_S = 1.0  # a stopped replica's children may hold its port a moment longer
_PORT_POLL_S = 0.02


class PortHeldError(OSError):
    """A replica's port is already listened on by another process."""


class SpawnJournal(Protocol):
    """Durable record of spawns: written before the process exists, and right after."""

    def intend(self, target: str, replica: int, port: int | None, nonce: str) -> None:
        """About to spawn ``replica`` with ``nonce`` (made durable by :meth:`settle` before the spawn)."""

    async def settle(self) -> None:
        """Wait, without blocking the event loop, until what was journaled so far is durable."""

    def spawned(self, target: str, replica: int, pid: int, create_time: float, port: int | None, nonce: str) -> None:
        """The spawn with ``nonce`` is process ``pid``."""

    def forget(self, target: str, replica: int) -> None:
        """The replica is no longer supervised (stopped at shutdown, scaled in, or never spawned)."""


class ProcessListener(Protocol):
    """Told about every start and exit of a replica."""

    def on_started(self, target: str, replica: int, pid: int, port: int | None, create_time: float) -> None:
        """A replica's process was spawned."""

    def on_exited(self, target: str, replica: int, pid: int, code: int | None, expected: bool) -> None:
        """A replica's process exited; ``expected`` when we stopped it."""

    def on_spawn_failed(self, target: str, replica: int, error: str) -> None:
        """A replica's process could not be started at all (bad command, cwd, permissions)."""


class _NoJournal:
    """Spawns recorded nowhere (tests and tools that supervise nothing across restarts)."""

    def intend(self, target: str, replica: int, port: int | None, nonce: str) -> None:
        """Nothing to record."""

    async def settle(self) -> None:
        """Nothing to wait for."""

    def spawned(self, target: str, replica: int, pid: int, create_time: float, port: int | None, nonce: str) -> None:
        """Nothing to record."""

    def forget(self, target: str, replica: int) -> None:
        """Nothing to forget."""


@dataclass
class _Replica:
    index: int
    port: int | None
    pid: int | None = None
    started_at: float = 0.0
    stopping: bool = False
    spawning: bool = False  # between the journal's intent and the pid: a second spawn must not start
    exited: asyncio.Event = field(default_factory=asyncio.Event)


def expand_target_vars(text: str, *, name: str, replica: int, port: int | None) -> str:
    """Fill ``{name}``, ``{replica}`` and ``{port}`` (plain replacement: braces elsewhere stay)."""
    out = text.replace("{name}", name).replace("{replica}", str(replica))
    return out.replace("{port}", str(port)) if port is not None else out


class ProcessActuator:
    """The actuator for ``kind: process`` targets."""

    def __init__(
        self,
        spec: FleetSpec,
        *,
        clock: Clock,
        log_dir: Path,
        listener: ProcessListener,
        watcher: ExitWatcher | None = None,
        journal: SpawnJournal | None = None,
        fleet_id: str = "",
    ) -> None:
        """``journal`` records every spawn durably; ``fleet_id`` marks every child's environment."""
        mine = [t for t in spec.targets if t.kind == "process"]  # sim targets belong to the twin
        self._specs = {t.name: t for t in mine}
        self._clock = clock
        self._log_dir = log_dir
        self._listener = listener
        self._watcher = watcher or ExitWatcher()
        self._replicas: dict[str, dict[int, _Replica]] = {t.name: {} for t in mine}
        self._desired = {t.name: t.replicas for t in mine}
        self._journal: SpawnJournal = journal or _NoJournal()
        self.fleet_id = fleet_id
        self.limits = Reallocator(lambda: Cgroups.detect(spec.cgroups, fleet=spec.name))
        # Owner-only: replicas' output may carry secrets. Folders created here (the work
        # folder too) are 0700, log files 0600; folders that exist keep their mode.
        log_dir.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        log_dir.mkdir(mode=0o700, exist_ok=True)

    # -- the Actuator contract ---------------------------------------------------------
    async def apply(self, action: Action) -> Outcome:
        """Carry out one action; failures are reported in the outcome, not raised."""
        started = self._clock.now()
        handler = self._handlers().get(action.kind)
        if handler is None:
            return Outcome(action.id, False, started, self._clock.now(), f"process targets cannot {action.kind}")
        try:
            detail = await handler(action)
        except ActuatorError as exc:
            return Outcome(action.id, False, started, self._clock.now(), str(exc))
        except (OSError, ValueError, KeyError, TypeError) as exc:  # bad params fail the action, never hang it
            return Outcome(action.id, False, started, self._clock.now(), f"{action.kind} failed: {exc}")
        return Outcome(action.id, True, started, self._clock.now(), detail, {"pids": list(self.pids(action.target))})

    def refusal(self, kind: ActionKind, target: str, params: Mapping[str, Any] = EMPTY) -> str | None:
        """Why ``kind`` cannot be carried out on ``target`` here (None when it can be tried)."""
        if kind is ActionKind.REALLOCATE and target in self._specs:
            return self.limits.refusal(self._specs[target], params)
        if kind is ActionKind.CLEANUP and target in self._specs and not self._specs[target].cleanup_paths:
            return f"{target} declares no cleanup_paths: there is no folder it may empty"
        return None

    async def observe(self, target: TargetId) -> TargetState:
        """Replicas alive versus desired."""
        pids = self.pids(target)
        return TargetState(target, running=len(pids), desired=self._desired.get(target, 0), pids=pids)

    # -- lifecycle ---------------------------------------------------------------------
    def spec_of(self, target: str) -> TargetSpec:
        """The target spec the actuator currently runs."""
        return self._specs[target]

    def set_target_spec(self, tspec: TargetSpec, *, resize: bool = False) -> None:
        """Run ``tspec`` from the next (re)start of the target's replicas on.

        ``resize`` (a reloaded spec): its replica count becomes the desired one; otherwise a
        target already run keeps its count (a rollback does not undo a scale-out).
        """
        self._specs[tspec.name] = tspec
        self._replicas.setdefault(tspec.name, {})
        if resize:
            self._desired[tspec.name] = tspec.replicas
        else:
            self._desired.setdefault(tspec.name, tspec.replicas)

    def remove_target(self, target: str) -> None:
        """Forget a target whose replicas were stopped (removed from the spec), and their journal rows."""
        for index, rep in self._replicas.pop(target, {}).items():
            if rep.pid is None:
                self._journal.forget(target, index)
        self._specs.pop(target, None)
        self._desired.pop(target, None)

    def pids(self, target: str) -> tuple[int, ...]:
        """Pids of the target's live replicas."""
        return tuple(r.pid for r in self._replicas.get(target, {}).values() if r.pid is not None)

    def desired(self, target: str) -> int:
        """How many replicas the target should have."""
        return self._desired[target]

    def pid_of(self, target: str, replica: int) -> int | None:
        """The live pid of one replica, if it runs."""
        rep = self._replicas.get(target, {}).get(replica)
        return None if rep is None else rep.pid

    async def start_all(self, *, skip: Collection[str] = (), skip_replicas: Collection[tuple[str, int]] = ()) -> None:
        """Start every desired replica of every target that is not running (except ``skip``).

        A replica that cannot be spawned is reported to the listener, not raised: one bad
        command must not keep the rest of the fleet from starting. ``skip_replicas`` holds
        (target, replica) pairs the caller leaves to the healer (found dead at start: a
        fault, not a silent respawn).
        """
        for name in self._specs:
            if name in skip:
                continue
            for i in range(self._desired[name]):
                if (name, i) in skip_replicas:
                    continue
                try:
                    await self._spawn_if_missing(name, i)
                except OSError as exc:
                    self._replicas[name].pop(i, None)
                    self._listener.on_spawn_failed(name, i, f"cannot start: {exc}")

    async def stop_all(self) -> None:
        """Stop every replica gracefully (then forcibly), e.g. at shutdown."""
        stops = [self._stop(name, r) for name, reps in self._replicas.items() for r in list(reps.values())]
        await asyncio.gather(*stops, return_exceptions=True)
        self._watcher.close()
        self.limits.forget_groups()  # stopped replicas' cgroups are empty now
        for name, reps in self._replicas.items():
            for index, rep in reps.items():
                if rep.pid is None:
                    self._journal.forget(name, index)

    def use_journal(self, journal: SpawnJournal, *, fleet_id: str) -> None:
        """Journal every spawn from now on, and mark children with ``fleet_id``."""
        self._journal, self.fleet_id = journal, fleet_id

    def adopt(self, target: str, replica: int, pid: int, create_time: float) -> bool:
        """Take over a replica started by a previous controller process, if it still runs."""
        if target not in self._specs or not _same_process(pid, create_time):
            return False
        rep = _Replica(replica, replica_port(self._specs[target], replica), pid=pid, started_at=create_time)
        self._replicas[target][replica] = rep
        return self._watch(target, rep)

    # -- action handlers ---------------------------------------------------------------
    def _handlers(self) -> dict[ActionKind, Callable[[Action], Awaitable[str]]]:
        return {
            ActionKind.START: self._do_start,
            ActionKind.STOP: self._do_stop,
            ActionKind.RESTART: self._do_restart,
            ActionKind.REPLACE: self._do_replace,
            ActionKind.SCALE_OUT: self._do_scale_out,
            ActionKind.SCALE_IN: self._do_scale_in,
            ActionKind.CONFIG_ROLLBACK: self._do_config_rollback,
            ActionKind.DEPLOY_PATCH: self._do_config_rollback,  # a patched build is a new target spec (cwd)
            ActionKind.CONFIG_CHANGE: self._do_config_rollback,  # a tuned target spec: run it the same way
            ActionKind.CLEANUP: self._do_cleanup,
            ActionKind.WAIT: self._do_wait,
            ActionKind.REALLOCATE: self._do_reallocate,
        }

    async def _do_reallocate(self, action: Action) -> str:
        running = {i: pid for i in self._selected(action) if (pid := self.pid_of(action.target, i)) is not None}
        return await asyncio.to_thread(self.limits.apply, action, self._specs[action.target], running)

    async def _do_wait(self, action: Action) -> str:
        # Nothing to touch: the executor's verification is the wait (an upstream heals).
        return "waited: nothing touched"

    def _selected(self, action: Action) -> list[int]:
        """The replicas an action names (default: all), each an index the target declares."""
        desired = self._desired[action.target]
        replicas, replica = action.params.get("replicas"), action.params.get("replica")
        if replicas is not None:
            chosen = replicas if isinstance(replicas, list | tuple) else [replicas]
        elif replica is not None:
            chosen = [replica]
        else:
            return list(range(desired))
        for index in chosen:
            if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < desired:
                raise ValueError(f"replica {index!r} does not exist: {action.target} runs replicas 0..{desired - 1}")
        return list(chosen)

    async def _do_start(self, action: Action) -> str:
        await self._await_ports_free(action.target, self._selected(action))
        started = [i for i in self._selected(action) if await self._spawn_if_missing(action.target, i)]
        return f"started replicas {started}" if started else "already running"

    async def _do_stop(self, action: Action) -> str:
        reps = self._replicas[action.target]
        await asyncio.gather(*(self._stop(action.target, reps[i]) for i in self._selected(action) if i in reps))
        return f"stopped replicas {self._selected(action)}"

    async def _do_restart(self, action: Action) -> str:
        await self._do_stop(action)
        await self._do_start(action)
        return f"restarted replicas {self._selected(action)}"

    async def _do_replace(self, action: Action) -> str:
        reps = self._replicas[action.target]
        await asyncio.gather(*(self._kill(reps[i]) for i in self._selected(action) if i in reps))
        await self._do_start(action)
        return f"replaced replicas {self._selected(action)}"

    async def _do_scale_out(self, action: Action) -> str:
        target, step = action.target, int(action.params.get("count", 1))
        new = min(self._specs[target].max_replicas, self._desired[target] + step)
        if new == self._desired[target]:
            raise ValueError(f"already at max_replicas ({new})")
        self._desired[target] = new
        await self._ensure(target)
        return f"scaled out to {new}"

    async def _do_scale_in(self, action: Action) -> str:
        target, step = action.target, int(action.params.get("count", 1))
        new = max(1, self._desired[target] - step)
        if new == self._desired[target]:
            raise ValueError("already at one replica")
        self._desired[target] = new
        reps = self._replicas[target]
        await asyncio.gather(*(self._stop(target, reps[i]) for i in list(reps) if i >= new))
        for i in [i for i in reps if i >= new and reps[i].pid is None]:
            self._journal.forget(target, i)
        return f"scaled in to {new}"

    async def _do_config_rollback(self, action: Action) -> str:
        tspec = TargetSpec.model_validate(action.params["target_spec"])
        self.set_target_spec(tspec)
        await self._do_restart(action)
        return f"running config version {action.params.get('version', '?')}"

    async def _do_cleanup(self, action: Action) -> str:
        allowed = self._specs[action.target].cleanup_paths
        path = str(action.params.get("path") or (allowed[0] if allowed else ""))
        freed = await asyncio.to_thread(_empty_allowed_dir, Path(path), [Path(p) for p in allowed])
        return f"freed {freed} bytes in {path}"

    # -- mechanics ---------------------------------------------------------------------
    async def _await_ports_free(self, target: str, indexes: list[int]) -> None:
        """Give a just-stopped replica's leftovers a moment to release its port."""
        tspec = self._specs[target]
        ports = [p for i in indexes if (p := replica_port(tspec, i)) is not None and self.pid_of(target, i) is None]
        deadline = self._clock.monotonic() + _PORT_FREE_WAIT_S
        for _ in range(int(_PORT_FREE_WAIT_S / _PORT_POLL_S)):  # a port frees without an event to wait on
            if not any(_port_held(p) for p in ports) or self._clock.monotonic() >= deadline:
                return
            await asyncio.sleep(_PORT_POLL_S)

    async def _ensure(self, target: str) -> None:
        for i in range(self._desired[target]):
            await self._spawn_if_missing(target, i)

    async def _spawn_if_missing(self, target: str, index: int) -> bool:
        rep = self._replicas[target].get(index)
        if rep is not None and (rep.pid is not None or rep.spawning):
            return False
        tspec = self._specs[target]
        rep = _Replica(index, replica_port(tspec, index), spawning=True)
        self._replicas[target][index] = rep
        try:
            await self._spawn(tspec, rep)
        except OSError:
            del self._replicas[target][index]
            raise
        finally:
            rep.spawning = False
        return True

    async def _spawn(self, tspec: TargetSpec, rep: _Replica) -> None:
        def fill(s: str) -> str:
            return expand_target_vars(s, name=tspec.name, replica=rep.index, port=rep.port)

        if rep.port is not None and _port_held(rep.port):
            raise PortHeldError(f"port {rep.port} is already in use by {port_holder(rep.port)}")
        nonce = uuid.uuid4().hex
        env = {**os.environ, **{k: fill(v) for k, v in tspec.env.items()}}
        env.update(NOVACRON_TARGET=tspec.name, NOVACRON_REPLICA=str(rep.index), **{ENV_NONCE: nonce})
        if self.fleet_id:
            env[ENV_FLEET] = self.fleet_id
        if rep.port is not None:
            env["PORT"] = str(rep.port)
        log_path = self._log_dir / f"{tspec.name}-{rep.index}.log"
        self._journal.intend(tspec.name, rep.index, rep.port, nonce)
        await self._journal.settle()  # the intent is durable before the child exists
        try:
            proc = self._popen(tspec, rep, env, fill, log_path)
        except OSError:
            self._journal.forget(tspec.name, rep.index)
            raise
        # The Popen object is dropped on purpose: the pidfd watcher reaps the child.
        proc.returncode = 0
        rep.pid, rep.started_at, rep.stopping = proc.pid, self._clock.now(), False
        rep.exited = asyncio.Event()
        created = _create_time(proc.pid)
        self.limits.attach(tspec.name, rep.index, proc.pid)  # limits set by reallocate outlive a restart
        self._journal.spawned(tspec.name, rep.index, proc.pid, created, rep.port, nonce)
        self._listener.on_started(tspec.name, rep.index, proc.pid, rep.port, created)
        self._watch(tspec.name, rep)

    @staticmethod
    def _popen(
        tspec: TargetSpec, rep: _Replica, env: dict[str, str], fill: Callable[[str], str], log_path: Path
    ) -> subprocess.Popen[bytes]:
        with _open_log(log_path) as log:
            return subprocess.Popen(
                [fill(a) for a in tspec.command],
                cwd=fill(tspec.cwd) if tspec.cwd else None,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def _watch(self, target: str, rep: _Replica) -> bool:
        pid = rep.pid
        assert pid is not None

        def exited(_pid: int, code: int | None) -> None:
            if rep.pid == pid:
                rep.pid = None
            rep.exited.set()
            self._listener.on_exited(target, rep.index, pid, code, rep.stopping)

        if self._watcher.watch(pid, exited):
            return True
        exited(pid, None)
        return False

    async def _stop(self, target: str, rep: _Replica) -> None:
        if rep.pid is None:
            return
        rep.stopping = True
        # SIGCONT first: a stopped (hung) process cannot act on SIGTERM until resumed.
        _signal_group(rep.pid, signal.SIGCONT)
        _signal_group(rep.pid, signal.SIGTERM)
        try:
            async with asyncio.timeout(self._specs[target].stop_timeout_s):
                await rep.exited.wait()
        except TimeoutError:
            await self._kill(rep)

    async def _kill(self, rep: _Replica) -> None:
        if rep.pid is None:
            return
        rep.stopping = True
        _signal_group(rep.pid, signal.SIGKILL)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5.0):
                await rep.exited.wait()


def replica_port(tspec: TargetSpec, replica: int) -> int | None:
    """Replica *i* of a target with a ``port`` listens on ``port + i``."""
    return None if tspec.port is None else tspec.port + replica


def _port_held(port: int) -> bool:
    """Whether something listens on ``port`` (any IPv4 address): a bind test, microseconds."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # SO_REUSEADDR: a port in TIME_WAIT is free for the replica too; only a listener blocks.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("0.0.0.0", port))  # noqa: S104 - a bind test, closed at once: conflicts with any listener
        except OSError:
            return True
    return False


def port_holder(port: int) -> str:
    """``pid 123 (redis-server *:6379)`` for the process listening on ``port``, when it can be seen."""
    try:
        conns = psutil.net_connections(kind="tcp")
    except (psutil.Error, OSError):
        return "another process"
    for conn in conns:
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
            try:
                cmd = " ".join(psutil.Process(conn.pid).cmdline())[:120]
            except psutil.Error:
                cmd = "?"
            return f"pid {conn.pid} ({cmd})"
    return "another process"


def _open_log(path: Path) -> IO[bytes]:
    """Append to a replica's log, created owner-only: output may carry secrets."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    return os.fdopen(fd, "ab")


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def _create_time(pid: int) -> float:
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return 0.0


def _same_process(pid: int, create_time: float) -> bool:
    """True if ``pid`` is alive and is the process created at ``create_time`` (not a reuse)."""
    try:
        proc = psutil.Process(pid)
        return abs(proc.create_time() - create_time) < 1.0 and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _empty_allowed_dir(path: Path, allowed: list[Path]) -> int:
    """Empty ``path`` if, resolved, it is one of the declared cleanup paths."""
    resolved = path.resolve()
    if resolved not in {p.resolve() for p in allowed}:
        raise ValueError(f"{path} is not one of the target's cleanup_paths")
    return _empty_dir(resolved)


def _empty_dir(path: Path) -> int:
    freed = 0
    for child in path.iterdir():
        if child.is_dir() and not child.is_symlink():
            freed += sum(f.stat().st_size for f in child.rglob("*") if f.is_file())
            shutil.rmtree(child, ignore_errors=True)
        else:
            freed += child.stat().st_size
            child.unlink(missing_ok=True)
    return freed
