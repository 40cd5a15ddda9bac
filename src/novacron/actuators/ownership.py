"""Who owns a port: the proof that a repair started the process that now serves the target.

A health check only says that *something* answers on the target's port. After an action
the controller also asks the operating system (psutil) whether the process it started —
or one of its children, for commands that fork or wrap — is the one listening there, and
when it is not, which process is: its pid and command line go into the report.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import psutil

__all__ = ["PortHolder", "listening", "owns_port", "port_holder"]


@dataclass(frozen=True, slots=True)
class PortHolder:
    """The process listening on a port."""

    pid: int
    command: str

    def __str__(self) -> str:
        return f"pid {self.pid} ({self.command})"


def _listens(proc: psutil.Process, port: int) -> bool:
    with contextlib.suppress(psutil.Error):
        return any(
            c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port
            for c in proc.net_connections(kind="inet")
        )
    return False


def owns_port(pid: int, port: int) -> bool:
    """Whether ``pid`` or one of its descendants listens on TCP ``port``."""
    try:
        proc = psutil.Process(pid)
        family = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return False
    return any(_listens(p, port) for p in family)


def listening() -> dict[int, int]:
    """Every listening TCP port on the machine and the pid holding it (one scan)."""
    try:
        conns = psutil.net_connections(kind="inet")
    except psutil.Error:
        return {}
    return {c.laddr.port: c.pid for c in conns if c.status == psutil.CONN_LISTEN and c.laddr and c.pid is not None}


def port_holder(port: int, ports: dict[int, int] | None = None) -> PortHolder | None:
    """The process listening on TCP ``port`` (None when free or not visible to us).

    ``ports`` is a :func:`listening` scan to reuse when checking many ports.
    """
    pid = (listening() if ports is None else ports).get(port)
    return None if pid is None else PortHolder(pid, _command(pid))


def _command(pid: int) -> str:
    try:
        return " ".join(psutil.Process(pid).cmdline())[:200] or "?"
    except psutil.Error:
        return "?"
