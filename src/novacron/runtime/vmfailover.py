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
naming why (no host had room). From the moment the host is found failed until each
guest's move has ended, the failover owns that guest's repair: the safety gate defers
the healer's steps on it (a probe may have opened the guest's incident first), and the
move's outcome settles the incident — resolved when the guest is verified healthy on its
new host, handed to a human naming why otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import TYPE_CHECKING, Any

from novacron.healing.catalog import new_action
from novacron.healing.executor import ExecResult
from novacron.healing.safety import Verdict
from novacron.model import ActionKind, Priority, TargetId
from novacron.placement import plan_evacuation
from novacron.telemetry import get_logger

if TYPE_CHECKING:
    from novacron.runtime.controller import Controller

__all__ = ["HostWatch", "fail_over_host", "failover_actor", "take_over_guests"]

_RETRY_S = 0.5  # a move the gate deferred (other guests' repairs fill the blast radius) is asked again
_RETRY_FOR_S = 600.0


async def fail_over_host(controller: Controller, host: str, *, reason: str | None = None) -> list[ExecResult]:
    """Mark ``host`` failed and restart its guests elsewhere, highest priority first.

    The failover owns its guests' repair until each has moved (:func:`take_over_guests`,
    called when the host is found failed): the healer's steps on them wait in the gate,
    and each guest's move settles its incident.
    """
    vms = controller.actuator.vms
    owner = failover_actor(host)
    guests = await vms.fail_host(host)
    plan = plan_evacuation(guests, vms.hosts.rooms(exclude=[host]))
    vms.take_places(plan)
    why = reason or f"host {host} failed"
    # The places were taken in priority order; the guests then boot side by side. One
    # without a place still goes through the executor, which records why it has none.
    by_target: dict[str, list[dict[str, Any]]] = {}
    for (target, replica), to in plan:
        params: dict[str, Any] = {"replica": replica, "reason": why, "from": host}
        if to is not None:
            params["to"] = to
        by_target.setdefault(target, []).append(params)
    moved = await asyncio.gather(*(_move_target(controller, t, moves, owner) for t, moves in by_target.items()))
    return [result for results in moved for result in results]


def failover_actor(host: str) -> str:
    """Who a failover of ``host`` acts as: the owner of its guests' repair while it runs."""
    return f"failover:{host}"


def take_over_guests(controller: Controller, host: str) -> None:
    """The failover of ``host`` owns the repair of the host's guests from now on (decided in the gate)."""
    for target in {target for target, _replica in controller.actuator.vms.guests_of(host)}:
        controller.gate.take_over(target, failover_actor(host))


async def _move_target(
    controller: Controller, target: str, moves: list[dict[str, Any]], owner: str
) -> list[ExecResult]:
    """Move a target's guests off the host, settle its incident by the outcome, then hand its repair back."""
    try:
        results = list(await asyncio.gather(*(_move(controller, target, params, owner) for params in moves)))
        _settle(controller, target, owner, results)
        return results
    finally:
        controller.gate.hand_back(target, owner)


async def _move(controller: Controller, target: str, params: dict[str, Any], owner: str) -> ExecResult:
    """One guest's move; deferred by the gate for now (blast radius, rate), it is asked again."""
    incident = controller.incidents.open_for(target)
    action = new_action(
        ActionKind.VM_MIGRATE,
        TargetId(target),
        key=f"{owner}/{target}#{params['replica']}/{uuid.uuid4().hex[:8]}",
        incident_id=incident.id if incident else None,
        params=params,
        reason=str(params["reason"]),
        requested_by=owner,
    )
    deadline = controller.clock.monotonic() + _RETRY_FOR_S
    while True:
        result = await controller.executor.execute(action, incident=incident)
        deferred = result.decision is not None and result.decision.verdict is Verdict.DEFER
        if not deferred or controller.clock.monotonic() > deadline:
            return result
        await controller.clock.sleep(_RETRY_S)


def _settle(controller: Controller, target: str, owner: str, results: list[ExecResult]) -> None:
    """The target's incident (if its probes opened one) ends with the failover's outcome."""
    incident = controller.incidents.open_for(target)
    if incident is None:
        return
    failed = [r for r in results if not r.verified]
    if not failed:
        controller.incidents.resolve(incident, healed_by=f"vm_migrate verified ({owner})")
        return
    details = "; ".join(r.detail for r in failed)
    controller.incidents.escalate(incident, f"{owner} could not move {target}: {details}", priority=Priority.P1)


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
        take_over_guests(self._controller, host)  # now, before any healer step on them is gated again
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
