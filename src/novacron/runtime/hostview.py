"""The controller's :class:`~novacron.healing.hosts.HostView`: where each target runs, how its host is.

Processes run on this controller's node, whose load is the operating system's one-minute
load average over its cores; ``kind: sim`` targets run on the twin's hosts, whose load is
the twin's node metrics; remote endpoints and VM guests give no host evidence here.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from novacron.settings import FleetSpec

if TYPE_CHECKING:
    from novacron.runtime.twinfleet import SimFleet

__all__ = ["FleetHosts", "node_load"]


def node_load() -> float:
    """This machine's CPU utilisation from its one-minute load average (0..1)."""
    return min(1.0, os.getloadavg()[0] / (os.cpu_count() or 1))


class FleetHosts:
    """Placement and host load for a spec's targets, by target kind."""

    def __init__(
        self,
        spec: FleetSpec,
        node_id: str,
        twin: SimFleet | None = None,
        *,
        local_load: Callable[[], float] = node_load,
    ) -> None:
        self._kinds = {t.name: t.kind for t in spec.targets}
        self._node = f"node-{node_id}"
        self._twin = twin
        self._local_load = local_load

    def host_of(self, target: str) -> str | None:
        """The node for a process, the twin host for a sim target, else None."""
        kind = self._kinds.get(target)
        if kind == "process":
            return self._node
        if kind == "sim" and self._twin is not None:
            return self._twin.host_of(target)
        return None

    def load(self, host: str) -> float | None:
        """The node's load, or the twin host's."""
        if host == self._node:
            return self._local_load()
        if self._twin is not None and host.startswith("twin-host-"):
            return self._twin.host_load(host)
        return None
