"""Local processes: start, stop, restart, replace and scale the replicas of ``process`` targets.

Each replica runs in its own session (process group) so a stop reaches its children too,
and its output goes to ``<log_dir>/<target>-<replica>.log``. Exits are seen through
:class:`~novacron.sensors.process.ExitWatcher` and reported to a listener, which is told
whether the exit was expected (we stopped it) or a crash.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import psutil

from novacron.clock import Clock
from novacron.model import Action, ActionKind, Outcome, TargetId, TargetState
from novacron.sensors.process import ExitWatcher
from novacron.settings import FleetSpec, TargetSpec

__all__ = ["ProcessActuator", "ProcessListener", "expand_target_vars", "replica_port"]


class ProcessListener(Protocol):
    """Told about every start and exit of a replica."""

    def on_started(self, target: str, replica: int, pid: int, port: int | None, create_time: float) -> None:
        """A replica's process was spawned."""

    def on_exited(self, target: str, replica: int, pid: int, code: int | None, expected: bool) -> None:
        """A replica's process exited; ``expected`` when we stopped it."""

    def on_spawn_failed(self, target: str, replica: int, error: str) -> None:
        """A replica's process could not be started at all (bad command, cwd, permissions)."""


@dataclass
class _Replica:
    index: int
    port: int | None
    pid: int | None = None
    started_at: float = 0.0
    stopping: bool = False
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
    ) -> None:
        mine = [t for t in spec.targets if t.kind == "process"]  # sim targets belong to the twin
        self._specs = {t.name: t for t in mine}
        self._clock = clock
        self._log_dir = log_dir
        self._listener = listener
        self._watcher = watcher or ExitWatcher()
        self._replicas: dict[str, dict[int, _Replica]] = {t.name: {} for t in mine}
        self._desired = {t.name: t.replicas for t in mine}
        log_dir.mkdir(parents=True, exist_ok=True)

    # -- the Actuator contract ---------------------------------------------------------
    async def apply(self, action: Action) -> Outcome:
        """Carry out one action; failures are reported in the outcome, not raised."""
        started = self._clock.now()
        handler = self._handlers().get(action.kind)
        if handler is None:
            return Outcome(action.id, False, started, self._clock.now(), f"process targets cannot {action.kind}")
        try:
            detail = await handler(action)
        except (OSError, ValueError, KeyError) as exc:
            return Outcome(action.id, False, started, self._clock.now(), f"{action.kind} failed: {exc}")
        return Outcome(action.id, True, started, self._clock.now(), detail, {"pids": list(self.pids(action.target))})

    async def observe(self, target: TargetId) -> TargetState:
        """Replicas alive versus desired."""
        pids = self.pids(target)
        return TargetState(target, running=len(pids), desired=self._desired.get(target, 0), pids=pids)

    # -- lifecycle ---------------------------------------------------------------------
    def spec_of(self, target: str) -> TargetSpec:
        """The target spec the actuator currently runs."""
        return self._specs[target]

    def set_target_spec(self, tspec: TargetSpec) -> None:
        """Run ``tspec`` from the next (re)start of the target's replicas on."""
        self._specs[tspec.name] = tspec
        self._replicas.setdefault(tspec.name, {})
        self._desired.setdefault(tspec.name, tspec.replicas)

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

    async def start_all(self) -> None:
        """Start every desired replica of every target that is not running.

        A replica that cannot be spawned is reported to the listener, not raised: one bad
        command must not keep the rest of the fleet from starting.
        """
        for name in self._specs:
            for i in range(self._desired[name]):
                try:
                    self._spawn_if_missing(name, i)
                except OSError as exc:
                    self._replicas[name].pop(i, None)
                    self._listener.on_spawn_failed(name, i, f"cannot start: {exc}")

    async def stop_all(self) -> None:
        """Stop every replica gracefully (then forcibly), e.g. at shutdown."""
        stops = [self._stop(name, r) for name, reps in self._replicas.items() for r in list(reps.values())]
        await asyncio.gather(*stops, return_exceptions=True)
        self._watcher.close()

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
            ActionKind.CLEANUP: self._do_cleanup,
            ActionKind.WAIT: self._do_wait,
        }

    async def _do_wait(self, action: Action) -> str:
        # Nothing to touch: the executor's verification is the wait (an upstream heals).
        return "waited: nothing touched"

    def _selected(self, action: Action) -> list[int]:
        if "replicas" in action.params:
            return [int(r) for r in action.params["replicas"]]
        if "replica" in action.params:
            return [int(action.params["replica"])]
        return list(range(self._desired[action.target]))

    async def _do_start(self, action: Action) -> str:
        started = [i for i in self._selected(action) if self._spawn_if_missing(action.target, i)]
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
    async def _ensure(self, target: str) -> None:
        for i in range(self._desired[target]):
            self._spawn_if_missing(target, i)

    def _spawn_if_missing(self, target: str, index: int) -> bool:
        rep = self._replicas[target].get(index)
        if rep is not None and rep.pid is not None:
            return False
        tspec = self._specs[target]
        rep = _Replica(index, replica_port(tspec, index))
        self._replicas[target][index] = rep
        try:
            self._spawn(tspec, rep)
        except OSError:
            del self._replicas[target][index]
            raise
        return True

    def _spawn(self, tspec: TargetSpec, rep: _Replica) -> None:
        def fill(s: str) -> str:
            return expand_target_vars(s, name=tspec.name, replica=rep.index, port=rep.port)

        env = {**os.environ, **{k: fill(v) for k, v in tspec.env.items()}}
        env.update(NOVACRON_TARGET=tspec.name, NOVACRON_REPLICA=str(rep.index))
        if rep.port is not None:
            env["PORT"] = str(rep.port)
        log_path = self._log_dir / f"{tspec.name}-{rep.index}.log"
        with log_path.open("ab") as log:
            proc = subprocess.Popen(
                [fill(a) for a in tspec.command],
                cwd=fill(tspec.cwd) if tspec.cwd else None,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        # The Popen object is dropped on purpose: the pidfd watcher reaps the child.
        proc.returncode = 0
        rep.pid, rep.started_at, rep.stopping = proc.pid, self._clock.now(), False
        rep.exited = asyncio.Event()
        self._listener.on_started(tspec.name, rep.index, proc.pid, rep.port, _create_time(proc.pid))
        self._watch(tspec.name, rep)

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
