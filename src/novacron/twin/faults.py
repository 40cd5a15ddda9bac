"""Fault kinds and healing action kinds, and what each does to the fleet state.

A fault is always injected *at a VM*; host-level kinds (disk fill, partition, thermal
runaway, host failure) hit that VM's host. Effects only change arrays; the simulator keeps
the records (when, detected, recovered).
"""

from __future__ import annotations

import enum

import numpy as np

from novacron.errors import InputError
from novacron.twin.params import PhysicsParams
from novacron.twin.state import FleetState, VmStatus

__all__ = ["HOST_FAULTS", "TwinAction", "TwinFault", "apply_fault", "begin_action", "finish_action"]


class TwinFault(enum.StrEnum):
    """Faults the twin can inject."""

    CRASH = "crash"
    HANG = "hang"
    LEAK = "leak"
    DISK_FILL = "disk_fill"
    PARTITION = "partition"
    THERMAL_RUNAWAY = "thermal_runaway"
    NOISY_NEIGHBOUR = "noisy_neighbour"
    HOST_FAILURE = "host_failure"


HOST_FAULTS = frozenset({TwinFault.DISK_FILL, TwinFault.PARTITION, TwinFault.THERMAL_RUNAWAY, TwinFault.HOST_FAILURE})


class TwinAction(enum.StrEnum):
    """Remediations the twin can carry out (VM-level: restart, migrate; the rest host-level)."""

    RESTART = "restart"
    MIGRATE = "migrate"
    REPLACE = "replace"  # repair or swap the host: power, cooling, links, disk
    CLEANUP = "cleanup"  # free disk space and stop the runaway writer
    REROUTE = "reroute"  # restore the host's network paths
    # The VM's CPU share is raised above its host's other tenants (a cgroup weight): their
    # extra demand no longer slows it. It is VM-level, keeps the VM running, and lasts
    # until undone (it is a property of the VM's allocation, kept across restarts).
    REALLOCATE = "reallocate"


HOST_ACTIONS = frozenset({TwinAction.REPLACE, TwinAction.CLEANUP, TwinAction.REROUTE})


def parse_fault(kind: str | TwinFault) -> TwinFault:
    """The fault kind named ``kind``, or InputError listing the valid ones."""
    try:
        return TwinFault(kind)
    except ValueError:
        valid = ", ".join(k.value for k in TwinFault)
        raise InputError(f"unknown fault kind {kind!r} (valid: {valid})", where="fault") from None


def parse_action(kind: str | TwinAction) -> TwinAction:
    """The action kind named ``kind``, or InputError listing the valid ones."""
    try:
        return TwinAction(kind)
    except ValueError:
        valid = ", ".join(k.value for k in TwinAction)
        raise InputError(f"unknown action kind {kind!r} (valid: {valid})", where="action") from None


def apply_fault(state: FleetState, params: PhysicsParams, vm: int, kind: TwinFault) -> None:
    """Change the state as fault ``kind`` striking VM ``vm`` (or its host) would."""
    host = int(state.vm_host[vm])
    if kind is TwinFault.CRASH:
        if state.status[vm] != VmStatus.ACTING:
            state.set_status(vm, VmStatus.CRASHED)
    elif kind is TwinFault.HANG:
        if state.status[vm] == VmStatus.UP:
            state.set_status(vm, VmStatus.HUNG)
    elif kind is TwinFault.LEAK:
        state.set_leak(vm, params.leak_gb_per_s)
    elif kind is TwinFault.NOISY_NEIGHBOUR:
        state.set_vm_extra_cpu(vm, params.noisy_extra_cores)
    elif kind is TwinFault.DISK_FILL:
        state.disk_fill_gb_s[host] = params.disk_fill_gb_per_s
    elif kind is TwinFault.PARTITION:
        topo = state.topo
        state.link_up[(topo.link_src == host) | (topo.link_dst == host)] = False
        state.refresh_links()
    elif kind is TwinFault.THERMAL_RUNAWAY:
        state.cooling[host] = params.runaway_cooling_factor
    elif kind is TwinFault.HOST_FAILURE:
        fail_host(state, host)


def fail_host(state: FleetState, host: int) -> None:
    """Power a host off: its VMs stop answering until moved or the host is repaired."""
    state.host_up[host] = False
    state.backlog[host] = 0.0


def begin_action(state: FleetState, kind: TwinAction, vm: int) -> None:
    """What happens when an action starts (VM-level actions take the VM down)."""
    if kind in (TwinAction.RESTART, TwinAction.MIGRATE):
        state.set_status(vm, VmStatus.ACTING)


def finish_action(
    state: FleetState, params: PhysicsParams, kind: TwinAction, vm: int, host: int, dst: int = -1
) -> None:
    """What happens when an action completes. ``host`` is the target host for host actions."""
    if kind in (TwinAction.RESTART, TwinAction.MIGRATE):
        # A fresh process: leaked memory, hang and runaway threads are gone.
        state.reset_vm_memory(vm)
        state.set_leak(vm, 0.0)
        state.set_vm_extra_cpu(vm, 0.0)
        if kind is TwinAction.MIGRATE and dst >= 0:
            state.move_vm(vm, dst)
        state.set_status(vm, VmStatus.UP)
    elif kind is TwinAction.CLEANUP:
        state.disk_fill_gb_s[host] = 0.0
        state.disk_used_gb[host] = min(state.disk_used_gb[host], state.topo.host_disk_gb[host] * 0.3)
    elif kind is TwinAction.REALLOCATE:
        state.vm_priority[vm] = True
    elif kind is TwinAction.REROUTE:
        _restore_links(state, host)
    elif kind is TwinAction.REPLACE:
        state.host_up[host] = True
        state.cooling[host] = 1.0
        state.temp_c[host] = params.ambient_c
        state.backlog[host] = 0.0
        state.disk_fill_gb_s[host] = 0.0
        state.disk_used_gb[host] = state.topo.host_disk_gb[host] * 0.3
        _restore_links(state, host)


def _restore_links(state: FleetState, host: int) -> None:
    topo = state.topo
    mine = (topo.link_src == host) | (topo.link_dst == host)
    if not state.link_up[mine].all():
        state.link_up[mine] = True
        state.refresh_links()


def pick_target_host(
    state: FleetState, params: PhysicsParams, avoid: int, reserved: np.ndarray, need_cores: float = 0.0
) -> int:
    """The healthy host with the most CPU headroom (counting migrations already planned).

    With ``need_cores`` > 0 the host must still keep 15 % headroom after taking that much,
    else -1: moving load onto a host that then saturates only moves the problem.
    """
    ok = state.host_ok(params) & ~state.throttled
    if state.topo.n_hosts > 1:
        ok[avoid] = False
    if not ok.any():
        return -1
    cores = state.topo.host_cores
    headroom = np.where(ok, 1.0 - state.util - reserved / cores, -np.inf)
    best = int(np.argmax(headroom))
    if need_cores > 0 and headroom[best] - need_cores / cores[best] < 0.15:
        return -1
    return best
