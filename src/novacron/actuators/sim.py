"""The ``sim://`` actuator: the Actuator contract carried out on a twin simulation.

Each target is one twin VM (see :mod:`novacron.sensors.sim` for names). Actions map onto
the twin's remediations by what they mean for a service:

- ``restart`` / ``start`` → restart the VM in place (graceful stop, fresh start);
- ``replace`` → a fresh VM elsewhere: migrate it to the healthiest host, which also gets
  it off a broken host (power, disk, network, heat), as a replacement pod or VM would;
  a host found broken is handed back for repair (the twin's host ``replace``), as a
  cloud's auto-repair would, so capacity returns;
- ``cleanup`` → empty the host's disk and stop the runaway writer;
- ``config_rollback`` → restart the VM on its previous configuration (the sensor's bad
  configuration is gone once the restart is done);
- ``wait`` → touch nothing (the executor's verification watches the target heal);
- ``reallocate`` → raise the VM's CPU share above its host's other tenants (a cgroup
  weight), so a noisy neighbour no longer slows it; its inverse lowers it back.

Traffic actions (``drain`` and the rest) are refused: a twin target has no load balancer.

Every other kind is refused in the outcome (never raised). ``apply`` waits, on the
injected clock, until the twin says the action is done, so the executor's verification
starts exactly when it would after a real restart. The listener hears the same stop and
start notifications a process actuator gives its controller.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from novacron.actuators.haproxy import TRAFFIC_ACTIONS
from novacron.actuators.traffic import no_load_balancer
from novacron.clock import Clock
from novacron.model import EMPTY, Action, ActionKind, Outcome, TargetId, TargetState
from novacron.sensors.sim import SimSensor, sim_target
from novacron.twin.faults import TwinAction
from novacron.twin.sim import Simulator
from novacron.twin.state import VmStatus

__all__ = ["TWIN_ACTIONS", "SimActuator", "SimListener", "targets_for"]

TWIN_ACTIONS = {
    ActionKind.RESTART: TwinAction.RESTART,
    ActionKind.START: TwinAction.RESTART,
    ActionKind.REPLACE: TwinAction.MIGRATE,
    ActionKind.CLEANUP: TwinAction.CLEANUP,
    ActionKind.CONFIG_ROLLBACK: TwinAction.RESTART,
    ActionKind.REALLOCATE: TwinAction.REALLOCATE,
}
# Actions that take the VM's process down for their duration (the others act on its host).
_STOPS_VM = frozenset({TwinAction.RESTART, TwinAction.MIGRATE})


class SimListener(Protocol):
    """Told when a sim target's process is stopped by an action and when it is up again."""

    def on_started(self, target: str, replica: int) -> None:
        """The VM's process is running again (verify it quickly)."""

    def on_exited(self, target: str, replica: int, *, expected: bool) -> None:
        """The VM's process stopped; ``expected`` when an action stopped it."""


class SimActuator:
    """The actuator for ``sim://`` targets."""

    def __init__(
        self,
        sim: Simulator,
        clock: Clock,
        sensor: SimSensor,
        *,
        listener: SimListener | None = None,
        stop_s: float = 0.0,
        decide_s: float = 0.0,
    ) -> None:
        """``stop_s``: how long stopping a running or hung VM takes before a restart or move.

        ``decide_s``: the controller's own time before an action lands (see
        :attr:`~novacron.settings.TwinSettings.decide_s`), spent at the start of every apply.
        """
        self.sim = sim
        self._clock = clock
        self.sensor = sensor
        self._listener = listener
        self.stop_s = stop_s
        self.decide_s = decide_s
        self.applied: dict[str, int] = {}

    def refusal(self, kind: ActionKind, target: str, params: Mapping[str, Any] = EMPTY) -> str | None:
        """Traffic actions: a twin target has no load balancer."""
        return no_load_balancer(target) if kind in TRAFFIC_ACTIONS else None

    async def apply(self, action: Action) -> Outcome:
        """Carry out ``action`` on the twin; refusals and failures are reported, not raised."""
        if self.decide_s > 0:
            await self._clock.sleep(self.decide_s)
        started = self._clock.now()
        if action.kind is ActionKind.WAIT and action.target in self.sensor.targets:
            return Outcome(action.id, True, started, started, "waited: nothing touched")
        if (
            action.kind is ActionKind.REALLOCATE
            and action.inverse_of is not None
            and action.target in self.sensor.targets
        ):
            self.sim.state.vm_priority[self.sensor.vm(action.target)] = False
            return Outcome(action.id, True, started, started, "CPU share back to the host's default")
        kind = TWIN_ACTIONS.get(action.kind)
        if kind is None:
            return Outcome(action.id, False, started, self._clock.now(), f"sim targets cannot {action.kind}")
        if action.target not in self.sensor.targets:
            return Outcome(action.id, False, started, self._clock.now(), f"no sim target {action.target}")
        vm = self.sensor.vm(action.target)
        if action.kind is ActionKind.START and self.sim.state.status[vm] == VmStatus.UP:
            return Outcome(action.id, True, started, self._clock.now(), "already running")
        host_before = int(self.sim.state.vm_host[vm])
        stops = kind in _STOPS_VM
        if stops and self.stop_s > 0 and self.sim.state.status[vm] in (VmStatus.UP, VmStatus.HUNG):
            await self._clock.sleep(self.stop_s)  # a graceful stop (then a kill) of the running process
        if stops and self._listener is not None:
            self._listener.on_exited(action.target, 0, expected=True)
        if kind is TwinAction.MIGRATE and not self._host_ok(host_before):
            self.sim.apply_action(vm, TwinAction.REPLACE)  # keyed by host: one repair per host
        done = self.sim.apply_action(vm, kind)
        self.applied[kind.value] = self.applied.get(kind.value, 0) + 1
        await self._clock.sleep(max(0.0, done - self.sim.now))
        if action.kind is ActionKind.CONFIG_ROLLBACK:
            self.sensor.restore_config(action.target)
        if stops and self._listener is not None:
            self._listener.on_started(action.target, 0)
        host_after = int(self.sim.state.vm_host[vm])
        detail = f"{kind.value} vm {vm}" + (f" host {host_before}→{host_after}" if host_after != host_before else "")
        data = {"vm": vm, "host": host_after, "twin_action": kind.value, "done_at": done}
        return Outcome(action.id, True, started, self._clock.now(), detail, data)

    def _host_ok(self, host: int) -> bool:
        state = self.sim.state
        return bool(state.host_ok(self.sim.params)[host]) and not bool(state.throttled[host])

    async def observe(self, target: TargetId) -> TargetState:
        """One replica wanted; running unless crashed or held down by an action."""
        vm = self.sensor.vm(target)
        status = VmStatus(int(self.sim.state.status[vm]))
        running = int(status in (VmStatus.UP, VmStatus.HUNG))
        return TargetState(
            target, running=running, desired=1, pids=(vm,) if running else (), detail=status.name.lower()
        )


def targets_for(vms: Iterable[int]) -> Mapping[str, int]:
    """Target name → VM index for the given VMs."""
    return {sim_target(vm): vm for vm in vms}
