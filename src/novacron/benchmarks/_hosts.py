"""Hosts for HA benchmarks and tests: network namespaces with veth links, and a PostgreSQL server they reach.

Each simulated host is a network namespace joined to the root namespace by a veth pair.
The services every host talks to — a PostgreSQL server of its own (``initdb`` in a
temporary folder, so the machine's server and its ``listen_addresses`` stay untouched)
and the remote-target server — listen on one address put on the root namespace's
loopback (``10.N.0.1/32``), which every namespace reaches over its link and the root
namespace reaches directly. Taking a host's link down (:meth:`Hosts.cut`) cuts that host
off from both, as a pulled cable would; :meth:`Hosts.restore` plugs it back in.

Needs root, ``ip netns`` (iproute2) and PostgreSQL's server binaries; :func:`unavailable`
says what is missing.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Hosts", "hosts", "pg_bin", "private_postgres", "unavailable"]


def pg_bin() -> Path | None:
    """The folder of PostgreSQL's server binaries (``initdb``, ``pg_ctl``), newest version first."""
    for folder in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (folder / "initdb").exists() and (folder / "pg_ctl").exists():
            return folder
    found = shutil.which("initdb")
    return Path(found).parent if found and shutil.which("pg_ctl") else None


def unavailable() -> str | None:
    """Why network namespaces cannot be made here (None: they can)."""
    if os.geteuid() != 0:
        return "not root"
    if shutil.which("ip") is None:
        return "no ip (iproute2)"
    if pg_bin() is None:
        return "no PostgreSQL server binaries (initdb, pg_ctl)"
    probe = f"nvprobe{os.getpid()}"
    if subprocess.run([_IP, "netns", "add", probe], capture_output=True, check=False).returncode != 0:
        return "ip netns add is not permitted"
    subprocess.run([_IP, "netns", "del", probe], capture_output=True, check=False)
    return None


_IP = shutil.which("ip") or "/usr/sbin/ip"


def _ip(*args: str) -> None:
    subprocess.run([_IP, *args], check=True, capture_output=True)


@dataclass
class Hosts:
    """Network namespaces ``0..n-1``, each linked to the root namespace; services at :attr:`address`."""

    tag: str
    octet: int
    count: int
    namespaces: list[str] = field(default_factory=list)

    @property
    def address(self) -> str:
        """Where the shared services listen: on the root namespace's loopback, reached over every link."""
        return f"10.{self.octet}.0.1"

    def host_address(self, host: int) -> str:
        """``host``'s own address (what the shared services see it connect from)."""
        return f"10.{self.octet}.{host + 1}.2"

    def prefix(self, host: int) -> list[str]:
        """The command prefix that runs a program on ``host``."""
        return [_IP, "netns", "exec", self.namespaces[host]]

    def _outer(self, host: int) -> str:
        return f"nv{self.tag}{host}h"

    def cut(self, host: int) -> None:
        """Take ``host``'s link down: nothing goes in or out any more."""
        _ip("link", "set", "dev", self._outer(host), "down")

    def restore(self, host: int) -> None:
        """Bring ``host``'s link back up (its address and route come back with it)."""
        _ip("link", "set", "dev", self._outer(host), "up")
        # Addresses the cut host failed to resolve stay FAILED for a while: forget them.
        _ip("-n", self.namespaces[host], "neigh", "flush", "dev", f"nv{self.tag}{host}n")
        _ip("neigh", "flush", "dev", self._outer(host))

    def _make(self) -> None:
        _ip("addr", "add", f"{self.address}/32", "dev", "lo")
        for k in range(self.count):
            ns, outer, inner = f"nv{self.tag}-{k}", self._outer(k), f"nv{self.tag}{k}n"
            _ip("netns", "add", ns)
            self.namespaces.append(ns)
            _ip("link", "add", outer, "type", "veth", "peer", "name", inner, "netns", ns)
            _ip("addr", "add", f"10.{self.octet}.{k + 1}.1/24", "dev", outer)
            _ip("link", "set", "dev", outer, "up")
            _ip("-n", ns, "addr", "add", f"10.{self.octet}.{k + 1}.2/24", "dev", inner)
            _ip("-n", ns, "link", "set", "dev", inner, "up")
            _ip("-n", ns, "link", "set", "dev", "lo", "up")
            _ip("-n", ns, "route", "add", "default", "via", f"10.{self.octet}.{k + 1}.1")

    def _remove(self) -> None:
        for k, ns in enumerate(self.namespaces):
            with contextlib.suppress(subprocess.CalledProcessError):
                _ip("link", "del", self._outer(k))  # deletes its peer too
            with contextlib.suppress(subprocess.CalledProcessError):
                _ip("netns", "del", ns)
        with contextlib.suppress(subprocess.CalledProcessError):
            _ip("addr", "del", f"{self.address}/32", "dev", "lo")


@contextlib.contextmanager
def hosts(count: int) -> Iterator[Hosts]:
    """``count`` network namespaces with veth links to the root namespace; removed afterwards."""
    rng = random.Random()
    h = Hosts(tag=f"{rng.randrange(16**4):04x}", octet=rng.randrange(100, 250), count=count)
    try:
        h._make()
        yield h
    finally:
        h._remove()


def _free_port(address: str) -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def private_postgres(listen: list[str]) -> Iterator[str]:
    """A throw-away PostgreSQL server listening on ``listen``; yields its admin URL on the first address."""
    folder = pg_bin()
    if folder is None:
        raise RuntimeError("no PostgreSQL server binaries (initdb, pg_ctl)")
    root = Path(tempfile.mkdtemp(prefix="novacron-pg-"))
    data = root / "data"
    as_pg = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_pg:
        shutil.chown(root, "postgres")
    port = _free_port(listen[0])
    try:
        subprocess.run(
            [*as_pg, str(folder / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"],
            check=True,
            capture_output=True,
        )
        with (data / "pg_hba.conf").open("a") as hba:
            for address in listen:
                hba.write(f"host all all {address.rsplit('.', 2)[0]}.0.0/16 trust\n")
        opts = (
            f"-p {port} -k {root} -c listen_addresses={','.join(listen)} -c shared_buffers=16MB "
            "-c max_connections=200 -c fsync=off"
        )
        subprocess.run(
            [*as_pg, str(folder / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(root / "log"), "-w", "start"],
            check=True,
            capture_output=True,
        )
        yield f"postgresql://postgres@{listen[0]}:{port}/postgres"
    finally:
        subprocess.run(
            [*as_pg, str(folder / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            check=False,
            capture_output=True,
        )
        deadline = time.monotonic() + 10
        while (data / "postmaster.pid").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        shutil.rmtree(root, ignore_errors=True)
