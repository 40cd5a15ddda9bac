"""Host failover for guests: a failed VM host's guests start on other hosts, by priority.

A host fails in one of two ways, both watched while ``novacron run`` runs:

- **its QEMU processes are gone**: a guest of a host holding two or more ends
  unexpectedly and the host's other QEMUs are gone too (exited, or dead and not yet
  reaped) — the actuator then tells their ends as expected instead of as crashes;
- **its node's heartbeat is lost**: a host bound to a controller node (``hosts[].node``)
  whose heartbeat row in the store was seen beating and then went stale
  (``controller.ha.node_stale_s``).

The plan is the one the twin's host-failure model makes too
(:func:`novacron.placement.plan_evacuation`): the host's guests, highest priority
first, each on the healthy host with the most free memory that still fits it, the places
taken before anything boots. Each guest then moves through the one executor as a
``vm_migrate`` — a cold migration, since its QEMU is gone — to its planned host, or fails
naming why (no host had room).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from novacron.healing.executor import ExecResult
from novacron.model import ActionKind, ActionStatus
from novacron.placement import plan_evacuation
from novacron.telemetry import get_logger

if TYPE_CHECKING:
    from novacron.runtime.controller import Controller

__all__ = ["HostWatch", "fail_over_host"]

_RETRY_S = 0.5  # a move the gate refused (other guests' repairs fill the blast radius) is asked again
_RETRY_FOR_S = 600.0


async def fail_over_host(
    controller: Controller, host: str, *, who: str = "controller", reason: str | None = None
) -> list[ExecResult]:
    """Mark ``host`` failed and restart its guests elsewhere, highest priority first."""
    vms = controller.actuator.vms
    guests = await vms.fail_host(host)
    plan = plan_evacuation(guests, vms.hosts.rooms(exclude=[host]))
    vms.take_places(plan)
    why = reason or f"host {host} failed"
    # The places were taken in priority order; the guests then boot side by side. One
    # without a place still goes through the executor, which records why it has none.
    moves = []
    for (target, replica), to in plan:
        params: dict[str, Any] = {"replica": replica, "reason": why, "from": host}
        if to is not None:
            params["to"] = to
        moves.append(_move(controller, target, params, who))
    return list(await asyncio.gather(*moves))


async def _move(controller: Controller, target: str, params: dict[str, Any], who: str) -> ExecResult:
    """One guest's move; refused by the gate for now (blast radius, rate), it is asked again."""
    deadline = controller.clock.monotonic() + _RETRY_FOR_S
    while True:
        result = await controller.heal(target, ActionKind.VM_MIGRATE, who=who, params=params)
        if result.status is not ActionStatus.BLOCKED or controller.clock.monotonic() > deadline:
            return result
        await controller.clock.sleep(_RETRY_S)


class HostWatch:
    """Fails a host over once, when its QEMUs all end together or its node's heartbeat is lost.

    Built by the controller, it listens to the QEMU actuator and to the HA heartbeat round.
    """

    def __init__(self, controller: Controller) -> None:
        self._controller = controller
        self._nodes = {h.name: h.node for h in controller.spec.hosts if h.node is not None}
        self._seen: set[str] = set()  # nodes seen beating: only those can be lost
        self.failed: dict[str, str] = {}  # host → why it failed
        self._tasks: set[asyncio.Task[list[ExecResult]]] = set()
        self._log = get_logger(component="vm-hosts")
        controller.actuator.vms.on_host_failed = self.host_failed
        controller.ha.on_nodes = self.nodes_live

    def host_failed(self, host: str, why: str) -> None:
        """``host`` has failed: move its guests (once)."""
        if host in self.failed:
            return
        self.failed[host] = why
        self._log.warning("VM host failed; its guests restart on the other hosts", host=host, reason=why)
        task = asyncio.get_running_loop().create_task(fail_over_host(self._controller, host, reason=why))
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[list[ExecResult]]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        if (exc := task.exception()) is not None:
            self._log.error("VM host failover failed", error=repr(exc))
            return
        for result in task.result():
            self._log.info("VM moved off a failed host", target=result.action.target, status=result.status.value)

    def nodes_live(self, live: set[str]) -> None:
        """The nodes beating now (each HA tick): a host whose node was seen and is gone has failed."""
        for host, node in self._nodes.items():
            if node in live:
                self._seen.add(node)
            elif node in self._seen:
                self.host_failed(host, f"node {node} of host {host} lost its heartbeat")

    async def close(self) -> None:
        """End failovers in flight (the controller is stopping; its guests stop with it)."""
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
