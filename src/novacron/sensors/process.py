"""Process-exit sensing: a pidfd per process, registered with the event loop.

Linux signals a pidfd readable the instant its process terminates, so an exit is noticed
at once rather than by polling, and it works for processes adopted after a controller
restart (which are not our children and cannot be waited on otherwise).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable

__all__ = ["ExitWatcher"]

ExitCallback = Callable[[int, int | None], None]  # (pid, exit status or None if unknown)


class ExitWatcher:
    """Calls back once per watched pid when that process exits."""

    def __init__(self) -> None:
        self._fds: dict[int, int] = {}

    def watch(self, pid: int, callback: ExitCallback) -> bool:
        """Watch ``pid``; returns False (without calling back) if it is already gone."""
        loop = asyncio.get_running_loop()
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            return False
        self._fds[pid] = fd

        def on_readable() -> None:
            self.unwatch(pid)
            callback(pid, _reap(pid))

        loop.add_reader(fd, on_readable)
        return True

    def unwatch(self, pid: int) -> None:
        """Stop watching ``pid`` (no callback)."""
        fd = self._fds.pop(pid, None)
        if fd is None:
            return
        with contextlib.suppress(RuntimeError):
            asyncio.get_running_loop().remove_reader(fd)
        os.close(fd)

    def close(self) -> None:
        """Stop watching everything."""
        for pid in list(self._fds):
            self.unwatch(pid)


def _reap(pid: int) -> int | None:
    """Collect a child's exit status; None for a process that is not our child."""
    try:
        _, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return None
    return os.waitstatus_to_exitcode(status) if status else 0
