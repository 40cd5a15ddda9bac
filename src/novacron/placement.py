"""Where a failed host's guests go: one plan for the twin's hosts and for real QEMU hosts.

:func:`plan_evacuation` takes the guests of a failed host (their memory, vCPUs and
priority) and the free room of every host that may take them, and places them highest
priority first, each on the host with the most free memory that still fits it (then the
most free vCPUs; then the first listed). Each place is taken before the next guest is
planned, so a full fleet leaves the lowest priorities without a host (``None``) rather
than a lower priority in the place of a higher one. The twin's host-failure model
(:meth:`novacron.twin.sim.Simulator.evacuate`) and the controller's VM host failover
(``runtime/vmfailover.py``) both plan with it.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["Evacuee", "Room", "best_host", "plan_evacuation"]

G = TypeVar("G", bound=Hashable)
H = TypeVar("H", bound=Hashable)


@dataclass(frozen=True, slots=True)
class Evacuee(Generic[G]):
    """A guest to place: its size and priority (higher goes first)."""

    guest: G
    memory: float
    cpus: float
    priority: int = 0


@dataclass(frozen=True, slots=True)
class Room(Generic[H]):
    """What a healthy host still has free."""

    host: H
    memory: float
    cpus: float


def best_host(rooms: Iterable[Room[H]], memory: float, cpus: float) -> H | None:
    """The host with the most free memory that fits ``memory`` and ``cpus`` (then most vCPUs, then first), or None."""
    best: Room[H] | None = None
    for room in rooms:
        if room.memory < memory or room.cpus < cpus:
            continue
        if best is None or (room.memory, room.cpus) > (best.memory, best.cpus):
            best = room
    return None if best is None else best.host


def plan_evacuation(guests: Iterable[Evacuee[G]], rooms: Iterable[Room[H]]) -> list[tuple[G, H | None]]:
    """Each guest with its new host (None where none has room), highest priority first.

    Guests of equal priority keep their given order. The rooms are not changed: the
    plan's places are taken from a copy as it goes.
    """
    free = {room.host: room for room in rooms}
    plan: list[tuple[G, H | None]] = []
    for guest in sorted(guests, key=lambda g: -g.priority):
        host = best_host(free.values(), guest.memory, guest.cpus)
        if host is not None:
            room = free[host]
            free[host] = Room(host, room.memory - guest.memory, room.cpus - guest.cpus)
        plan.append((guest.guest, host))
    return plan
