"""State replication: the twin's copy of the live fleet, kept within tens of milliseconds.

:class:`TwinMirror` follows a running :class:`~novacron.runtime.controller.Controller` through
three channels, fastest first: the controller's incident listeners (every timeline line
arrives synchronously, so a new or resolved incident is mirrored at once); the health
tracker's in-memory state, read every ``health_poll_s`` (10 ms: a dictionary walk); and
the store, read every ``store_poll_s`` (50 ms), which also catches changes made by
another process (an operator's CLI, an API replica). Each mirrored change records when
the mirror saw it, so the propagation latency can be measured (:func:`bench_mirror_latency`).

:meth:`TwinMirror.simulator` turns the mirror into a twin — one VM per target replica,
its status from the live health — so what-if questions can be asked about the fleet as
it is now.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from novacron.clock import Clock
from novacron.errors import InputError
from novacron.healing.health import HealthTracker
from novacron.model import (
    Health,
    Incident,
    TimelineEvent,
)
from novacron.settings import FleetSpec
from novacron.store import Store
from novacron.twin import HealerParams, Simulator, VmStatus, build_fleet

__all__ = ["MirrorSource", "MirroredTarget", "TwinMirror"]


class MirrorSource(Protocol):
    """What the mirror reads from a controller (``Controller`` and ``SimController`` satisfy it)."""

    health: HealthTracker
    store: Store
    listeners: list[Callable[[Incident, TimelineEvent], None]]


@dataclass(frozen=True, slots=True)
class MirroredTarget:
    """The mirror's view of one target."""

    name: str
    depends_on: tuple[str, ...]
    health: str
    replicas: int
    healthy_replicas: int
    incident: str | None = None
    incident_status: str | None = None
    seen_at: float = 0.0  # clock.monotonic() when the mirror last changed this entry


class TwinMirror:
    """A continuously updated copy of a controller's fleet."""

    def __init__(
        self,
        source: MirrorSource,
        clock: Clock,
        topology: Mapping[str, Sequence[str]],
        *,
        health_poll_s: float = 0.01,
        store_poll_s: float = 0.05,
    ) -> None:
        if not (health_poll_s > 0 and store_poll_s > 0):
            raise InputError("poll intervals must be > 0", where="health_poll_s/store_poll_s")
        self.source = source
        self.clock = clock
        self.health_poll_s = health_poll_s
        self.store_poll_s = store_poll_s
        self.targets: dict[str, MirroredTarget] = {
            name: MirroredTarget(name, tuple(deps), Health.UNKNOWN.value, 0, 0) for name, deps in topology.items()
        }
        self.version = 0
        self.changes: list[tuple[str, str, float]] = []  # (target, what, seen_at)
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def for_spec(cls, source: MirrorSource, clock: Clock, spec: FleetSpec) -> TwinMirror:
        """A mirror of a controller running ``spec`` (topology from ``depends_on``)."""
        return cls(source, clock, {t.name: t.depends_on for t in spec.targets})

    @property
    def topology(self) -> dict[str, tuple[str, ...]]:
        """Target → the targets it depends on."""
        return {name: t.depends_on for name, t in self.targets.items()}

    def attach(self) -> None:
        """Subscribe to incident changes and start polling health and the store."""
        self.source.listeners.append(self._on_incident)
        self._refresh_store()
        self._refresh_health()
        self._task = asyncio.get_running_loop().create_task(self._poll(), name="twin-mirror")

    async def close(self) -> None:
        """Stop following the controller."""
        with contextlib.suppress(ValueError):
            self.source.listeners.remove(self._on_incident)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    # -- channels ----------------------------------------------------------------------
    def _on_incident(self, incident: Incident, event: TimelineEvent) -> None:
        self._set_incident(incident.target, incident, f"incident:{event.kind}")
        self._refresh_health()  # a timeline line usually follows a health change: take it now

    async def _poll(self) -> None:
        ticks_per_store = max(1, round(self.store_poll_s / self.health_poll_s))
        tick = 0
        while True:
            await self.clock.sleep(self.health_poll_s)
            self._refresh_health()
            tick += 1
            if tick % ticks_per_store == 0:
                self._refresh_store()

    def _refresh_health(self) -> None:
        tracker = self.source.health
        for name, old in self.targets.items():
            reps = tracker.replicas(name)
            new = replace(
                old,
                health=tracker.health(name).value,
                replicas=len(reps),
                healthy_replicas=sum(r.healthy for r in reps.values()),
            )
            if (new.health, new.replicas, new.healthy_replicas) != (old.health, old.replicas, old.healthy_replicas):
                self._put(new, f"health:{new.health}")

    def _refresh_store(self) -> None:
        open_now: dict[str, Incident] = {i.target: i for i in self.source.store.open_incidents()}
        for name, old in self.targets.items():
            incident = open_now.get(name)
            if incident is None and old.incident is not None:
                self._set_incident(name, None, "store:closed")
            elif incident is not None and (incident.id, incident.status.value) != (old.incident, old.incident_status):
                self._set_incident(name, incident, "store:incident")

    def _set_incident(self, name: str, incident: Incident | None, why: str) -> None:
        old = self.targets.get(name)
        if old is None:
            return
        if incident is None or not incident.is_open:
            new = replace(old, incident=None, incident_status=None)
        else:
            new = replace(old, incident=incident.id, incident_status=incident.status.value)
        if (new.incident, new.incident_status) != (old.incident, old.incident_status):
            self._put(new, why)

    def _put(self, target: MirroredTarget, why: str) -> None:
        now = self.clock.monotonic()
        self.targets[target.name] = replace(target, seen_at=now)
        self.version += 1
        self.changes.append((target.name, why, now))

    # -- into the twin -----------------------------------------------------------------
    def simulator(self) -> tuple[Simulator, dict[str, int]]:
        """A twin of the fleet as mirrored now: one VM per replica; target → its first VM."""
        names = list(self.targets)
        counts = [max(1, self.targets[n].replicas) for n in names]
        sim = Simulator(build_fleet(1, sum(counts), n_groups=1), healer=HealerParams(enabled=False))
        first: dict[str, int] = {}
        vm = 0
        for name, count in zip(names, counts, strict=True):
            first[name] = vm
            t = self.targets[name]
            for i in range(count):
                if i >= t.healthy_replicas:
                    stopped = t.health in (Health.STOPPED.value, Health.UNKNOWN.value)
                    sim.state.set_status(vm + i, VmStatus.CRASHED if stopped else VmStatus.HUNG)
            vm += count
        return sim, first
