"""VM hosts: their capacity, which guests they hold, whether they failed, and their blast radius.

A host here is a named place QEMU processes run (several share this machine in tests and
the demo); its capacity is the guest memory and vCPUs it may hold. Placement picks the
host with the most free memory among those that fit. Each host also has a blast-radius
budget — at most ``max(1, ⌊blast_radius × guests on it⌋)`` guests disturbed at once —
and a migration takes a slot on both hosts it touches.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from novacron.placement import Room, best_host
from novacron.settings import VmHostSpec

__all__ = ["HostBook", "HostUse"]


@dataclass
class HostUse:
    """What one host holds right now."""

    spec: VmHostSpec
    guests: dict[str, tuple[int, int]] = field(default_factory=dict)  # guest → (memory MiB, vCPUs)
    busy: set[str] = field(default_factory=set)  # guests under a disruptive action
    failed: bool = False

    @property
    def free_memory(self) -> int:
        """Guest memory still free, in MiB."""
        return self.spec.memory_mib - sum(m for m, _ in self.guests.values())

    @property
    def free_cpus(self) -> int:
        """vCPUs still free."""
        return self.spec.cpus - sum(c for _, c in self.guests.values())


class HostBook:
    """The hosts and the guests placed on them."""

    def __init__(self, hosts: Iterable[VmHostSpec], *, blast_radius: float) -> None:
        self._hosts = {h.name: HostUse(h) for h in hosts}
        self._blast_radius = blast_radius

    def names(self) -> list[str]:
        """Every host's name."""
        return list(self._hosts)

    def use(self, host: str) -> HostUse:
        """The host's current use (KeyError for an unknown host)."""
        return self._hosts[host]

    def host_of(self, guest: str) -> str | None:
        """The host a guest is placed on."""
        return next((name for name, use in self._hosts.items() if guest in use.guests), None)

    def guests_on(self, host: str) -> list[str]:
        """The guests placed on ``host``."""
        return list(self._hosts[host].guests)

    def why_not(self, host: str, memory_mib: int, cpus: int, *, guest: str = "") -> str | None:
        """Why ``host`` cannot take a guest of this size (None when it can)."""
        use = self._hosts.get(host)
        if use is None:
            return f"unknown host {host!r}"
        if use.failed:
            return f"host {host} has failed"
        held = use.guests.get(guest, (0, 0))
        if memory_mib > use.free_memory + held[0]:
            return f"host {host} has {use.free_memory + held[0]} MiB free, the guest needs {memory_mib} MiB"
        if cpus > use.free_cpus + held[1]:
            return f"host {host} has {use.free_cpus + held[1]} vCPUs free, the guest needs {cpus}"
        return None

    def place(self, guest: str, host: str, memory_mib: int, cpus: int) -> None:
        """Record ``guest`` on ``host`` (moving it off any other)."""
        self.remove(guest)
        self._hosts[host].guests[guest] = (memory_mib, cpus)

    def remove(self, guest: str) -> None:
        """The guest is placed nowhere."""
        for use in self._hosts.values():
            use.guests.pop(guest, None)

    def rooms(self, *, exclude: Iterable[str] = ()) -> list[Room[str]]:
        """The free memory (MiB) and vCPUs of every healthy host but ``exclude``."""
        skip = set(exclude)
        return [
            Room(name, use.free_memory, use.free_cpus)
            for name, use in self._hosts.items()
            if name not in skip and not use.failed
        ]

    def pick(self, memory_mib: int, cpus: int, *, exclude: Iterable[str] = ()) -> str | None:
        """The healthy host with the most free memory that fits the guest, or None."""
        return best_host(self.rooms(exclude=exclude), memory_mib, cpus)

    def mark_failed(self, host: str, failed: bool = True) -> None:
        """A host is out (its guests need a new home) or back."""
        self._hosts[host].failed = failed

    # -- per-host blast radius ---------------------------------------------------------
    def cap(self, host: str) -> int:
        """How many guests on ``host`` may be disturbed at once."""
        use = self._hosts[host]
        return max(1, math.floor(self._blast_radius * len(use.guests) + 1e-9))

    def acquire(self, guest: str, hosts: Iterable[str]) -> str | None:
        """Take a slot on every host for ``guest``; the reason when one is full (nothing taken)."""
        wanted = list(dict.fromkeys(hosts))
        for host in wanted:
            use = self._hosts[host]
            if guest not in use.busy and len(use.busy) >= self.cap(host):
                return (
                    f"blast radius of host {host}: {len(use.busy)} of its guests already disturbed "
                    f"({', '.join(sorted(use.busy))}; cap {self.cap(host)})"
                )
        for host in wanted:
            self._hosts[host].busy.add(guest)
        return None

    def release(self, guest: str, hosts: Iterable[str]) -> None:
        """Give the guest's slots back."""
        for host in hosts:
            self._hosts[host].busy.discard(guest)
