"""Listening ports claimed before anything starts: a taken port is bad input naming its holder."""

from __future__ import annotations

import contextlib
import errno
import socket

from novacron.errors import InputError

__all__ = ["bind_listener", "holder_of", "url_host"]


def holder_of(port: int) -> str:
    """``pid 123 (redis-server *:6379)`` for the process listening on ``port``, when it can be seen."""
    from novacron.actuators.process import port_holder  # psutil and friends only on this error path

    return port_holder(port)


def bind_listener(host: str, port: int, *, flag: str, host_flag: str) -> socket.socket:
    """A listening TCP socket on ``host:port`` (0 picks a free port), or InputError naming the holder.

    The error names ``flag`` (the port's option) when the port is the trouble, ``host_flag``
    when the address is: a name that does not resolve, or an address this machine does not have.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise InputError(f"port {port} on {host} is taken by {holder_of(port)}", where=flag) from exc
        if isinstance(exc, socket.gaierror) or exc.errno == errno.EADDRNOTAVAIL:
            raise InputError(f"cannot listen on {host}: {exc.strerror}", where=host_flag) from exc
        raise InputError(f"cannot listen on {host}:{port}: {exc.strerror}", where=flag) from exc
    sock.set_inheritable(False)
    return sock


def url_host(host: str) -> str:
    """The address a local client should use for a server bound to ``host``."""
    if host in ("", "0.0.0.0"):  # noqa: S104 - mapping a wildcard bind to loopback, not binding it
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def close_quietly(sock: socket.socket) -> None:
    """Close ``sock``, ignoring errors (shutdown paths)."""
    with contextlib.suppress(OSError):
        sock.close()
