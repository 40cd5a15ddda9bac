"""Everything the controller runs on this machine behind one face: processes and QEMU guests.

The controller asks one actuator for pids, desired counts and specs, starts and stops the
whole fleet, and routes each action by its target's kind. :class:`LocalActuator` answers
for ``kind: process`` targets through :class:`~novacron.actuators.process.ProcessActuator`
and for ``kind: vm`` targets through :class:`~novacron.actuators.qemu.QemuActuator`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any

from novacron.actuators.base import ActuatorRouter
from novacron.actuators.haproxy import TRAFFIC_ACTIONS
from novacron.actuators.process import ProcessActuator, ProcessListener, SpawnJournal
from novacron.actuators.qemu import QemuActuator
from novacron.actuators.traffic import no_load_balancer
from novacron.clock import Clock
from novacron.model import EMPTY, Action, ActionKind, Observation, Outcome, TargetId, TargetState
from novacron.settings import FleetSpec, TargetSpec

__all__ = ["LocalActuator"]


class LocalActuator:
    """Processes and VMs of one fleet, routed by target kind."""

    def __init__(
        self,
        spec: FleetSpec,
        *,
        processes: FleetSpec | None = None,
        clock: Clock,
        log_dir: Path,
        listener: ProcessListener,
        observe: Callable[[Observation], None] | None = None,
        heartbeat_port: Callable[[], int] = lambda: 0,
    ) -> None:
        self._kinds = {t.name: t.kind for t in spec.targets}
        # ``processes``: the process targets this node runs (default: every process target).
        process_spec = processes or spec.model_copy(
            update={"targets": [t for t in spec.targets if t.kind == "process"]}
        )
        self.processes = ProcessActuator(process_spec, clock=clock, log_dir=log_dir, listener=listener)
        self.vms = QemuActuator(
            spec, clock=clock, log_dir=log_dir, listener=listener, observe=observe, heartbeat_port=heartbeat_port
        )
        self._router = ActuatorRouter(self.kind_of, {"process": self.processes, "vm": self.vms})

    def kind_of(self, target: str) -> str:
        """The kind of a target (``process`` for one not in the spec, as before)."""
        return self._kinds.get(target, "process")

    def _one(self, target: str) -> ProcessActuator | QemuActuator:
        return self.vms if self.kind_of(target) == "vm" else self.processes

    def refusal(self, kind: ActionKind, target: str, params: Mapping[str, Any] = EMPTY) -> str | None:
        """Traffic actions need a load balancer (a frontend sends them elsewhere); reallocate, a writable cgroup."""
        if kind in TRAFFIC_ACTIONS:
            return no_load_balancer(target)
        if self.kind_of(target) == "vm":
            return "a vm target is resized with vm_resize, not reallocate" if kind is ActionKind.REALLOCATE else None
        return self.processes.refusal(kind, target, params)

    async def apply(self, action: Action) -> Outcome:
        """Apply through the actuator of the action's target kind."""
        return await self._router.apply(action)

    async def observe(self, target: TargetId) -> TargetState:
        """Observe through the actuator of the target's kind."""
        return await self._router.observe(target)

    def pids(self, target: str) -> tuple[int, ...]:
        """Pids of the target's live replicas (QEMU pids for guests)."""
        return self._one(target).pids(target)

    def pid_of(self, target: str, replica: int) -> int | None:
        """The live pid of one replica."""
        return self._one(target).pid_of(target, replica)

    def desired(self, target: str) -> int:
        """How many replicas the target should have."""
        return self._one(target).desired(target)

    def spec_of(self, target: str) -> TargetSpec:
        """The target spec currently run."""
        return self._one(target).spec_of(target)

    def set_target_spec(self, tspec: TargetSpec, *, resize: bool = False) -> None:
        """Run ``tspec`` from the next (re)start on (``resize``: a process target's replicas too)."""
        self._kinds[tspec.name] = tspec.kind
        if resize and tspec.kind == "process":
            self.processes.set_target_spec(tspec, resize=True)
        else:
            self._one(tspec.name).set_target_spec(tspec)

    def remove_target(self, target: str) -> None:
        """Forget a process target whose replicas are stopped (removed from the spec)."""
        self.processes.remove_target(target)
        self._kinds.pop(target, None)

    def use_journal(self, journal: SpawnJournal, *, fleet_id: str) -> None:
        """Journal every spawn (processes and QEMU) and mark children with ``fleet_id``."""
        self.processes.use_journal(journal, fleet_id=fleet_id)
        self.vms.use_journal(journal, fleet_id=fleet_id)

    async def start_all(self, *, skip: Collection[str] = (), skip_replicas: Collection[tuple[str, int]] = ()) -> None:
        """Start every missing process replica, then every missing guest (except ``skip``)."""
        await self.processes.start_all(skip=skip, skip_replicas=skip_replicas)
        await self.vms.start_all(skip=skip)

    async def stop_all(self) -> None:
        """Stop every guest and every process."""
        await self.vms.stop_all()
        await self.processes.stop_all()
