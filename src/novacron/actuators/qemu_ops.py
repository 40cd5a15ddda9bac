"""The guest operations beyond start and stop: live migration, snapshot, rollback and resize.

Each works on one guest (``replica`` in the action's params, 0 by default) and returns a
detail line and the figures it measured. A live migration starts the destination QEMU
with ``-incoming defer`` on the target host, streams the guest over loopback TCP, stops
the source, hands the port forwards over and reports QEMU's total time, downtime and
bytes plus the forward hand-over time; it takes a blast-radius slot on both hosts. If
the source QEMU is gone there is nothing to stream, and the guest is cold-started on the
destination instead (the detail says so). A failed live migration leaves the guest
running where it was. A snapshot streams the whole state to a file while the guest
runs on; a rollback boots a new QEMU from that file and replaces the running one.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from novacron.actuators.qemu_migrate import POLL_S, file_uri, load_uri, migrate, receive, wait_running
from novacron.actuators.qemu_qmp import QmpError
from novacron.actuators.qemu_vm import QemuProcess
from novacron.errors import ActuatorError
from novacron.model import Action

if TYPE_CHECKING:
    from novacron.actuators.qemu import QemuActuator

__all__ = ["GuestOps", "Snapshot"]

_MIGRATION_TIMEOUT_S = 120.0
_LOAD_TIMEOUT_S = 120.0
_BALLOON_SETTLE_S = 10.0

Result = tuple[str, dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A saved guest state."""

    name: str
    path: Path
    taken_at: float
    bytes: int


class GuestOps:
    """Migration, snapshots, rollback and resize for the guests of one :class:`QemuActuator`."""

    def __init__(self, vms: QemuActuator, snapshot_dir: Path) -> None:
        self._vms = vms
        self._snapshot_dir = snapshot_dir
        self._snapshots: dict[str, list[Snapshot]] = {}
        self._before: dict[str, dict[str, Any]] = {}  # action id → what an inverse restores

    def snapshots(self, target: str, replica: int = 0) -> list[Snapshot]:
        """The guest's snapshots, oldest first."""
        return list(self._snapshots.get(f"{target}#{replica}", []))

    # -- migration -----------------------------------------------------------------------
    async def migrate(self, action: Action) -> Result:
        """Move the guest to ``to`` (default: the fitting host with the most free memory)."""
        target, replica = action.target, _replica(action)
        key, vm = f"{target}#{replica}", self._vms.vm_of(target)
        # A failover names the failed host it moves the guest from (its new place is taken already).
        source = action.params.get("from") or self._vms.host_of(target, replica) or vm.host
        running_on = self._vms.host_of(target, replica) if self._vms.running(target, replica) else None
        if "from" in action.params and running_on not in (None, source):
            return f"{key} already runs again on {running_on}", {"from": source, "to": running_on, "mode": "none"}
        to = self._destination(action, source, vm.memory_mib, vm.cpus)
        why = self._vms.hosts.why_not(to, vm.memory_mib, vm.cpus, guest=key)
        if why is not None:
            raise ActuatorError(f"cannot migrate {key} to {to}: {why}")
        self._before[action.id] = {"to": source}
        proc = self._vms.running(target, replica)
        if proc is None:
            # Nothing to stream: a restart on the destination (host failover). The place is
            # taken now, so guests failing over together never overfill one host.
            self._vms.hosts.place(key, to, vm.memory_mib, vm.cpus)
            await self._vms.cold_start(target, replica, host=to)
            reason = action.params.get("reason") or "its QEMU was not running"
            return f"cold-migrated {key} {source} → {to}: {reason}", {"from": source, "to": to, "mode": "cold"}
        busy = self._vms.hosts.acquire(key, [source, to])
        if busy is not None:
            raise ActuatorError(busy)
        try:
            figures = await self._live(target, replica, proc, to)
        finally:
            self._vms.hosts.release(key, [source, to])
        detail = (
            f"live-migrated {key} {source} → {to} in {figures['total_ms']:.0f} ms "
            f"(downtime {figures['downtime_ms']:.0f} ms, {figures['bytes']} bytes)"
        )
        return detail, {"from": source, "to": to, "mode": "live", **figures}

    def _destination(self, action: Action, source: str, memory_mib: int, cpus: int) -> str:
        undo = self._before.get(str(action.inverse_of)) if action.inverse_of else None
        to = action.params.get("to") or (undo or {}).get("to")
        if to is None:
            to = self._vms.hosts.pick(memory_mib, cpus, exclude=[source])
            if to is None:
                raise ActuatorError(f"no other host has room for {action.target}#{_replica(action)}")
        if to == source:
            raise ActuatorError(f"{action.target}#{_replica(action)} already runs on {to}")
        return str(to)

    async def _live(self, target: str, replica: int, src: QemuProcess, to: str) -> dict[str, Any]:
        dest = await self._vms.launch(target, replica, to, incoming="defer")
        uri = f"tcp:127.0.0.1:{_free_port()}"
        self._vms.retire(target, replica, src)
        try:
            await receive(dest, uri)
            with self._vms.pausing(src):
                stats = await migrate(src, uri, timeout=_MIGRATION_TIMEOUT_S)
            # The guest paused for its last copy at most this long ago (QEMU's downtime plus
            # one poll of query-migrate): the switch-over window opens there.
            paused_at = time.monotonic() - stats.downtime_ms / 1000 - POLL_S
        except QmpError:
            await dest.kill()
            if src.alive:
                self._vms.reinstate(target, replica, src)
            raise
        handover_ms, handed = await self.take_over(target, replica, src, dest)
        # The switch-over: from the guest's last pause until its ports lead to the running destination.
        return {**stats.as_dict(), "handover_ms": handover_ms, "switch_window_monotonic": [round(paused_at, 3), handed]}

    async def take_over(
        self, target: str, replica: int, old: QemuProcess | None, new: QemuProcess
    ) -> tuple[float, float]:
        """Run the new QEMU, give it the old one's port forwards, end the old one, announce the new one.

        The new QEMU runs before it gets the ports: a client let in earlier would wait for
        the last of the state to load. The old QEMU lets go of the ports over QMP and the
        new one takes them straight after — two monitor commands, not a process's death
        and reaping — and only then is the old one killed: its guest lives on in the new
        one. Clients connecting in between are refused and retry; a request caught in the
        old QEMU fails when it dies. Returns how long the ports had no guest (ms) and when
        the new one had them (monotonic).
        """
        try:
            if await wait_running(new, timeout=_LOAD_TIMEOUT_S) != "running":
                await new.execute("cont")
        except QmpError:
            await new.kill()
            if old is not None and old.alive:  # it still holds the whole guest and the ports: it runs on
                with contextlib.suppress(QmpError):
                    await old.execute("cont")
                self._vms.reinstate(target, replica, old)
            raise
        started = time.monotonic()
        if old is not None:
            self._vms.retire(target, replica, old)
            try:
                await old.remove_forwards()
            except QmpError:
                await old.kill()  # QMP gone: its death frees the ports
        try:
            await new.add_forwards()
            handed = time.monotonic()  # the ports were without a guest until now
            if old is not None:
                await old.kill()
        except QmpError:
            await new.kill()
            if old is not None:
                await old.kill()
            raise
        self._vms.install(target, replica, new)
        return round((handed - started) * 1000, 1), round(handed, 3)

    # -- snapshots -------------------------------------------------------------------------
    async def snapshot(self, action: Action) -> Result:
        """Save the guest's whole state (memory and devices) to a file; the guest runs on."""
        target, replica = action.target, _replica(action)
        key = f"{target}#{replica}"
        proc = self._vms.running(target, replica)
        if proc is None:
            raise ActuatorError(f"{key} is not running: nothing to snapshot")
        taken = self._snapshots.setdefault(key, [])
        name = str(action.params.get("name") or f"snap-{len(taken) + 1}")
        if any(s.name == name for s in taken):
            raise ActuatorError(f"{key} already has a snapshot named {name!r}")
        self._snapshot_dir.mkdir(parents=True, exist_ok=True)
        path = self._snapshot_dir / f"{target}-{replica}-{name}.state"
        with self._vms.pausing(proc):
            stats = await migrate(proc, file_uri(path), timeout=_MIGRATION_TIMEOUT_S)
            if (await proc.status()) != "running":
                await proc.execute("cont")
        snap = Snapshot(name, path, time.time(), path.stat().st_size)
        taken.append(snap)
        detail = f"snapshot {name} of {key}: {snap.bytes} bytes in {stats.total_ms:.0f} ms"
        return detail, {"snapshot": name, "bytes": snap.bytes, "total_ms": stats.total_ms}

    async def rollback(self, action: Action) -> Result:
        """Run the guest from a snapshot (``name``, default the latest) in place of the running one."""
        target, replica = action.target, _replica(action)
        key = f"{target}#{replica}"
        taken = self._snapshots.get(key, [])
        name = action.params.get("name")
        snap = next((s for s in reversed(taken) if name in (None, s.name)), None)
        if snap is None:
            have = ", ".join(s.name for s in taken) or "none"
            which = f"snapshot {name!r}" if name else "snapshot"
            raise ActuatorError(f"{key} has no {which} to roll back to (its snapshots: {have})")
        host = self._vms.host_of(target, replica) or self._vms.vm_of(target).host
        new = await self._vms.launch(target, replica, host, incoming="defer")
        try:
            await receive(new, load_uri(snap.path))
            await wait_running(new, timeout=_LOAD_TIMEOUT_S)
        except QmpError:
            await new.kill()
            raise
        handover_ms, _handed = await self.take_over(target, replica, self._vms.running(target, replica), new)
        return f"rolled {key} back to snapshot {snap.name}", {"snapshot": snap.name, "handover_ms": handover_ms}

    # -- resize ----------------------------------------------------------------------------
    async def resize(self, action: Action) -> Result:
        """Balloon the guest's memory to ``memory_mib`` and/or hot-plug vCPUs up to ``cpus``."""
        target, replica = action.target, _replica(action)
        key = f"{target}#{replica}"
        proc = self._vms.running(target, replica)
        if proc is None:
            raise ActuatorError(f"{key} is not running: nothing to resize")
        wanted = dict(action.params)
        undo = self._before.get(str(action.inverse_of)) if action.inverse_of else None
        wanted.update(undo or {})
        if "memory_mib" not in wanted and "cpus" not in wanted:
            raise ActuatorError("vm_resize needs memory_mib or cpus")
        before: dict[str, Any] = {}
        done = []
        if "memory_mib" in wanted:
            before["memory_mib"] = await _balloon(
                proc, key, int(wanted["memory_mib"]), self._vms.vm_of(target).memory_mib
            )
            done.append(f"memory {before['memory_mib']} → {int(wanted['memory_mib'])} MiB")
        if "cpus" in wanted:
            before["cpus"] = await _hotplug_cpus(proc, key, int(wanted["cpus"]))
            done.append(f"vCPUs {before['cpus']} → {int(wanted['cpus'])}")
        self._before[action.id] = before
        return f"resized {key}: {', '.join(done)}", {"before": before}


async def _balloon(proc: QemuProcess, key: str, memory_mib: int, boot_mib: int) -> int:
    """Set the balloon so the guest has ``memory_mib``; the previous size in MiB."""
    if memory_mib > boot_mib:
        raise ActuatorError(f"{key}: the balloon cannot give more than the boot memory ({boot_mib} MiB)")
    try:
        current = int((await proc.execute("query-balloon"))["actual"]) >> 20
    except QmpError as exc:
        raise ActuatorError(f"{key}: memory resize is not supported by this guest ({exc})") from exc
    await proc.execute("balloon", {"value": memory_mib << 20})
    deadline = time.monotonic() + _BALLOON_SETTLE_S
    while time.monotonic() < deadline:
        actual = int((await proc.execute("query-balloon"))["actual"]) >> 20
        if abs(actual - memory_mib) <= max(1, memory_mib // 50):
            return current
        await asyncio.sleep(0.1)
    await proc.execute("balloon", {"value": current << 20})  # the guest did not follow: put it back
    raise ActuatorError(f"{key}: the guest did not release memory to {memory_mib} MiB within {_BALLOON_SETTLE_S:g}s")


async def _hotplug_cpus(proc: QemuProcess, key: str, cpus: int) -> int:
    """Hot-plug vCPUs until the guest has ``cpus``; the previous count."""
    slots = await proc.execute("query-hotpluggable-cpus")
    present = [s for s in slots if s.get("qom-path")]
    free = [s for s in slots if not s.get("qom-path")]
    if cpus < len(present):
        raise ActuatorError(f"{key}: removing vCPUs is not supported (it has {len(present)})")
    if cpus - len(present) > len(free):
        raise ActuatorError(f"{key}: only {len(present) + len(free)} vCPUs fit (the guest's max_cpus)")
    for n, slot in enumerate(free[: cpus - len(present)]):
        await proc.execute("device_add", {"driver": slot["type"], "id": f"cpu-hot-{len(present) + n}", **slot["props"]})
    return len(present)


def _replica(action: Action) -> int:
    return int(action.params.get("replica", 0))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
