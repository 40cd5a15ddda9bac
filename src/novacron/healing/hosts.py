"""Where a target runs, and how its host is doing: evidence a policy tells faults apart by.

A hung service, one starved of CPU by a noisy neighbour and one on a failed host give the
same probe result (no answer). The controller knows more than the probe: which host each
target runs on and that host's load (or that the host no longer answers). A
:class:`HostView` gives that for every target kind the controller supervises — the local
node's load average for processes, the twin's host metrics for ``kind: sim`` targets — and
:func:`host_evidence` turns it into the context's host features the same way for all.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

from novacron.healing.health import HealthTracker
from novacron.learning.context import host_state

__all__ = ["HostView", "chain_of", "host_evidence"]


class HostView(Protocol):
    """Placement and host load, as the controller sees them."""

    def host_of(self, target: str) -> str | None:
        """The host ``target`` runs on (None: not known for this kind of target)."""
        ...

    def load(self, host: str) -> float | None:
        """The host's CPU utilisation (0..1), or None when its metrics do not answer."""
        ...


def chain_of(target: str, graph: Mapping[str, Sequence[str]]) -> set[str]:
    """``target``, everything it depends on and everything that depends on it (transitively).

    Their failures follow from each other, so they are no evidence about the host.
    """
    dependents: dict[str, list[str]] = {}
    for name, ups in graph.items():
        for up in ups:
            dependents.setdefault(up, []).append(name)
    seen = {target}
    for edges in (graph, dependents):
        todo = [target]
        while todo:
            for nxt in edges.get(todo.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
    return seen


def host_evidence(
    target: str, view: HostView | None, health: HealthTracker, graph: Mapping[str, Sequence[str]]
) -> tuple[str, bool]:
    """The host's state (``HOST_STATES``) and whether an unrelated target on it fails too."""
    host = view.host_of(target) if view is not None else None
    if view is None or host is None:
        return host_state(None, known=False), False
    related = chain_of(target, graph)
    peers: Iterable[str] = (t for t in graph if t not in related and view.host_of(t) == host)
    failing = any(health.replicas(t) and not health.is_healthy(t) for t in peers)
    return host_state(view.load(host)), failing
