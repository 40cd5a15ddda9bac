"""Host failover for guests: a failed VM host's guests start on other hosts, by priority.

The plan is the actuator's (:meth:`~novacron.actuators.qemu.QemuActuator.fail_host`:
the host's guests, highest priority first); each guest then moves through the one
executor as a ``vm_migrate`` — a cold migration, since its QEMU is gone — which places it
on the healthy host with the most free memory that fits it, or fails naming why.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from novacron.healing.executor import ExecResult
from novacron.model import ActionKind

if TYPE_CHECKING:
    from novacron.runtime.controller import Controller

__all__ = ["fail_over_host"]


async def fail_over_host(controller: Controller, host: str, *, who: str = "controller") -> list[ExecResult]:
    """Mark ``host`` failed and restart its guests elsewhere, highest priority first."""
    guests = await controller.actuator.vms.fail_host(host)
    reason = f"host {host} failed"
    # Started in priority order, so higher-priority guests take the free places first;
    # they then boot side by side.
    moves = [
        controller.heal(target, ActionKind.VM_MIGRATE, who=who, params={"replica": replica, "reason": reason})
        for target, replica in guests
    ]
    return list(await asyncio.gather(*moves))
