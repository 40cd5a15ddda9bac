"""One running QEMU: launch it, hold its QMP session, see it exit, stop it.

:class:`QemuProcess` is the mechanics under the actuator: it spawns QEMU in its own
session, connects QMP (retrying while the socket appears), reports QEMU's own last words
when it dies during start-up (a missing kernel, a port in use), and turns the process's
end into one awaited callback, so whoever replaces a guest (migration, rollback) can wait
until the old process is gone and reported before announcing the new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from novacron.actuators.qemu_cmd import LaunchPlan, forward_rule, qemu_argv
from novacron.actuators.qemu_qmp import QmpError, QmpSession
from novacron.settings import VmSpec

__all__ = ["QemuProcess"]

OnExit = Callable[["QemuProcess", int | None], None]
OnEvent = Callable[["QemuProcess", str, Mapping[str, Any]], None]


class QemuProcess:
    """A QEMU process for one guest and its QMP session."""

    def __init__(self, name: str, vm: VmSpec, plan: LaunchPlan, host: str) -> None:
        self.name = name
        self.vm = vm
        self.plan = plan
        self.host = host
        self.pid: int | None = None
        self.qmp: QmpSession | None = None
        self.expected_exit = False  # set before we stop it on purpose
        self.retired = False  # its end was reported before it exited (replaced on purpose)
        self.forwarded = bool(plan.forwards) and plan.incoming is None
        self.nonce = ""  # the spawn's mark in QEMU's environment (a restarted controller finds it by it)
        self._proc: asyncio.subprocess.Process | None = None
        self._waiter: asyncio.Task[None] | None = None
        self.gone = asyncio.Event()  # set once the exit was seen and reported

    @property
    def alive(self) -> bool:
        """The QEMU process runs (its exit not seen yet)."""
        return self.pid is not None and not self.gone.is_set()

    async def launch(
        self,
        binary: str,
        on_event: OnEvent,
        on_exit: OnExit,
        *,
        env: Mapping[str, str] | None = None,
        timeout: float = 10.0,
    ) -> None:
        """Spawn QEMU (``env`` added to its environment), connect QMP; raise with QEMU's message if it dies first."""
        self.plan.qmp_socket.unlink(missing_ok=True)
        argv = qemu_argv(binary, self.vm, self.plan)
        log_path = self.plan.serial_log.with_suffix(".qemu.log")
        with log_path.open("ab") as log:
            self._proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
                env={**os.environ, **(env or {})},
            )
        self.pid = self._proc.pid
        self.qmp = QmpSession(self.name, lambda event, data: on_event(self, event, data))
        connect = asyncio.ensure_future(self.qmp.connect(self.plan.qmp_socket, timeout=timeout))
        died = asyncio.ensure_future(self._proc.wait())
        try:
            await asyncio.wait({connect, died}, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            # Cancelled (the controller stops) before anyone holds this QEMU: it must not run on.
            connect.cancel()
            died.cancel()
            self.kill_now()
            self.pid = None
            raise
        if died.done():
            connect.cancel()
            with contextlib.suppress(asyncio.CancelledError, QmpError):
                await connect
            self.pid = None
            await self._close_session()
            raise QmpError(f"{self.name}: QEMU exited at start ({died.result()}): {_last_words(log_path)}")
        died.cancel()
        try:
            connect.result()
        except QmpError:
            await self.kill()
            raise
        self._waiter = asyncio.get_running_loop().create_task(self._wait(on_exit))

    async def attach(self, pid: int, on_event: OnEvent, on_exit: OnExit, *, timeout: float = 5.0) -> str:
        """Take over a QEMU a previous controller started (``pid``): connect QMP, watch its end.

        Returns QEMU's run state. The process is not our child: its end is seen through a
        pidfd, and its exit code is unknown.
        """
        self.pid = pid
        self.qmp = QmpSession(self.name, lambda event, data: on_event(self, event, data))
        try:
            await self.qmp.connect(self.plan.qmp_socket, timeout=timeout)
            state = await self.status()
        except QmpError:
            self.pid = None
            await self._close_session()
            raise
        self._waiter = asyncio.get_running_loop().create_task(self._watch(on_exit))
        return state

    async def _watch(self, on_exit: OnExit) -> None:
        assert self.pid is not None
        try:
            # A pidfd becomes readable when the process ends: no polling, even for a non-child.
            fd = os.pidfd_open(self.pid)
        except OSError:
            fd = None
        if fd is not None:
            ended = asyncio.Event()
            loop = asyncio.get_running_loop()
            loop.add_reader(fd, ended.set)
            try:
                await ended.wait()
            finally:
                loop.remove_reader(fd)
                os.close(fd)
        try:
            on_exit(self, None)
        finally:
            await self._close_session()

    async def _wait(self, on_exit: OnExit) -> None:
        assert self._proc is not None
        code = await self._proc.wait()
        try:
            on_exit(self, code)
        finally:
            await self._close_session()

    async def _close_session(self) -> None:
        """Close the QMP session, then tell the process gone.

        In this order: whoever waits for the end (a stop, a replacement, the controller
        shutting down) then never leaves the session's disconnect half done, to be
        cancelled with the event loop.
        """
        try:
            if self.qmp is not None:
                await self.qmp.close()
        finally:
            self.gone.set()

    async def execute(
        self, command: str, arguments: Mapping[str, object] | None = None, *, timeout: float = 10.0
    ) -> Any:
        """A QMP command on this QEMU."""
        if self.qmp is None or not self.alive:
            raise QmpError(f"{self.name}: QEMU is not running")
        return await self.qmp.execute(command, arguments, timeout=timeout)

    async def status(self) -> str:
        """QEMU's run state (running, paused, postmigrate, shutdown, …)."""
        return str((await self.execute("query-status"))["status"])

    async def add_forwards(self) -> None:
        """Take over the guest's port forwards (after the previous QEMU let them go)."""
        if self.qmp is None:
            raise QmpError(f"{self.name}: QEMU is not running")
        for host_port, guest_port in self.plan.forwards:
            await self.qmp.hmp(f"hostfwd_add net0 {forward_rule(host_port, guest_port)}")
        self.forwarded = True

    async def remove_forwards(self) -> None:
        """Let go of the guest's port forwards (so the next QEMU can take them at once)."""
        if self.qmp is None or not self.alive or not self.forwarded:
            return
        for host_port, _guest_port in self.plan.forwards:
            rule = f"tcp:127.0.0.1:{host_port}"
            await self.qmp.hmp(f"hostfwd_remove net0 {rule}", success=f"host forwarding rule for {rule} removed")
        self.forwarded = False

    async def quit(self, *, timeout: float = 5.0) -> None:
        """Stop QEMU on purpose: QMP ``quit``, then SIGKILL if it lingers; wait until reported."""
        if not self.alive:
            return
        self.expected_exit = True
        with contextlib.suppress(QmpError):
            await self.execute("quit", timeout=2.0)
        try:
            async with asyncio.timeout(timeout):
                await self.gone.wait()
        except TimeoutError:
            await self.kill()

    def kill_now(self) -> None:
        """SIGKILL the QEMU process group at once, without waiting (safe where awaiting is not)."""
        if self.pid is None or self.gone.is_set():
            return  # never started, or its end seen: its pid may be another process's by now
        self.expected_exit = True
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)

    async def kill(self) -> None:
        """SIGKILL the QEMU process group (expected) and wait until reported."""
        if self.pid is None:
            return
        self.expected_exit = True
        self.kill_now()
        if self._waiter is None:  # never fully started: nobody else reaps it
            if self._proc is not None:
                await self._proc.wait()
            await self._close_session()
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5.0):
                await self.gone.wait()

    def when_gone(self) -> Awaitable[bool]:
        """Wait until the exit was seen and reported."""
        return self.gone.wait()


def _last_words(log_path: Path) -> str:
    try:
        lines = [ln for ln in log_path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return "no output"
    return lines[-1] if lines else "no output"
