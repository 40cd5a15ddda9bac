"""Warm restart of guests without writable state: resume a crashed guest from a saved state instead of booting.

For a target with ``vm.restart: warm`` the guest's whole state (memory and devices) is
saved once, the first time the guest is proven healthy: QEMU's migration stream to a file
while the guest runs on (paused only for the last copy). When the guest later needs a
restart, a new QEMU starts with ``-incoming defer`` and loads that file instead of booting.

The saved state is used only when it still fits the guest. Beside the stream a JSON file
holds its fingerprint — the QEMU command line the guest would be launched with (launch
paths and ports left out), and the identity (path, size, modification time) of the QEMU
binary and of the kernel, initrd and image — and a CRC-32 of the stream. A restore is
refused, and the caller boots the guest cold with the reason, when the state is missing
or unreadable, its fingerprint differs (another QEMU, memory, vCPUs, kernel, initrd,
command line, machine, accelerator or devices), its CRC-32 does not match (a corrupt
file), QEMU does not load it, or the guest last restored from it never became healthy.
A spec change drops it at once.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import zlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from novacron.actuators.qemu_cmd import LaunchPlan, qemu_argv
from novacron.actuators.qemu_migrate import file_uri, load_uri, migrate, receive, wait_running
from novacron.actuators.qemu_qmp import QmpError
from novacron.actuators.qemu_vm import QemuProcess
from novacron.errors import ActuatorError
from novacron.settings import VmSpec
from novacron.telemetry import get_logger

if TYPE_CHECKING:
    from novacron.actuators.qemu import QemuActuator

__all__ = ["Restored", "SavedState", "WarmRestore", "WarmRestoreError", "fingerprint", "state_digest"]

_SAVE_TIMEOUT_S = 120.0
_LOAD_TIMEOUT_S = 60.0
_CHUNK = 4 << 20


class WarmRestoreError(ActuatorError):
    """The guest cannot be restored warm; the message says why (the cold boot that follows records it)."""


@dataclass(frozen=True, slots=True)
class SavedState:
    """A guest's saved state: the stream file, what it was saved for, and its digest."""

    path: Path
    fingerprint: dict[str, Any]
    digest: str
    bytes: int
    saved_at: float  # wall clock
    save_ms: float  # QEMU's time to stream it


@dataclass(frozen=True, slots=True)
class Restored:
    """A guest resumed from its saved state, and how long each step took."""

    proc: QemuProcess
    state: SavedState
    launch_ms: float  # QEMU started and its QMP answers (the digest checked meanwhile)
    load_ms: float  # the state loaded and the guest running


def fingerprint(binary: str, vm: VmSpec, plan: LaunchPlan) -> dict[str, Any]:
    """What a saved state must have been saved for to be loaded into a QEMU launched with ``plan``.

    The command line without what differs between two launches of the same guest (QMP
    socket, console file, heartbeat port, forwards, ``-incoming``), and the files QEMU
    and the guest's boot read.
    """
    plain = replace(
        plan,
        qmp_socket=Path("qmp"),
        serial_log=Path("serial"),
        forwards=(),
        heartbeat_port=1 if plan.heartbeat_port else None,
        incoming=None,
    )
    argv = qemu_argv(os.path.realpath(binary), vm, plain)
    files = {"qemu": binary, "kernel": vm.kernel, "initrd": vm.initrd, "image": vm.image}
    return {"argv": argv, "files": {name: _identity(path) for name, path in files.items() if path is not None}}


def _identity(path: str) -> list[Any]:
    real = os.path.realpath(path)
    try:
        st = Path(real).stat()
    except OSError:
        return [real, None, None]
    return [real, st.st_size, st.st_mtime_ns]


def _differs(saved: dict[str, Any], now: dict[str, Any]) -> str:
    """What changed between two fingerprints, in a few words."""
    changed = [
        name
        for name in sorted({*saved.get("files", {}), *now["files"]})
        if saved.get("files", {}).get(name) != now["files"].get(name)
    ]
    old, new = list(saved.get("argv", [])), now["argv"]
    if old != new:
        pair = next(((a, b) for a, b in zip(old, new, strict=False) if a != b), None)
        changed.append(f"command line ({pair[0]!r} → {pair[1]!r})" if pair else "command line")
    return ", ".join(changed) or "nothing"


def state_digest(path: Path) -> str:
    """The checksum a saved state is checked against before QEMU loads it (CRC-32 of the stream).

    It guards against a file damaged or replaced on disk, not against a forger: the state
    directory is the controller's own. CRC-32 because it is checked on the way back to
    healthy: 68 MB take 0.04 s of CPU against 0.24 s for BLAKE2b (measured at load 7).
    """
    crc = 0
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            crc = zlib.crc32(chunk, crc)
    return f"crc32:{crc:08x}"


class WarmRestore:
    """The saved states of one :class:`QemuActuator`'s warm guests: saved once healthy, restored on restart."""

    def __init__(self, vms: QemuActuator, directory: Path) -> None:
        self._vms = vms
        self._dir = directory
        self._saving: dict[str, asyncio.Task[None]] = {}
        self._unproven: set[str] = set()  # guests restored and not yet proven healthy since
        self._log = get_logger(component="vm-warm")

    def enabled(self, target: str) -> bool:
        """The target asks for warm restarts."""
        return self._vms.vm_of(target).restart == "warm"

    def _paths(self, target: str, replica: int) -> tuple[Path, Path]:
        # Appended, not ``with_suffix``: a target name may hold a dot ("api.v1"), which
        # ``with_suffix`` would take for the suffix and replace, the replica number with it.
        base = f"{target}-{replica}"
        return self._dir / f"{base}.state", self._dir / f"{base}.json"

    # -- saving ----------------------------------------------------------------------------
    def proven(self, target: str, replica: int) -> None:
        """The guest was proven healthy: save its state, unless a fitting one is saved already."""
        key = f"{target}#{replica}"
        self._unproven.discard(key)
        if not self.enabled(target) or key in self._saving:
            return
        task = asyncio.get_running_loop().create_task(self._save_once(target, replica))
        self._saving[key] = task
        task.add_done_callback(lambda _t: self._saving.pop(key, None))

    async def close(self) -> None:
        """Stop the saves under way (the controller stops); what they wrote so far is removed."""
        tasks = list(self._saving.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)

    async def wait_saved(self, target: str, replica: int = 0) -> SavedState | None:
        """Wait for a save under way (if any); the guest's saved state."""
        task = self._saving.get(f"{target}#{replica}")
        if task is not None:
            await asyncio.wait({task})
        return self.saved(target, replica)

    async def _save_once(self, target: str, replica: int) -> None:
        try:
            async with self._vms.lock(target):
                proc = self._vms.running(target, replica)
                if proc is None or not self.enabled(target):
                    return
                current = fingerprint(self._vms.binary, proc.vm, proc.plan)
                saved = self.saved(target, replica)
                if saved is not None and saved.fingerprint == current:
                    return
                state = await self._save(target, replica, proc, current)
        except (ActuatorError, OSError) as exc:
            self._log.warning("warm state not saved", target=target, replica=replica, error=str(exc))
            return
        self._log.info("warm state saved", target=target, replica=replica, bytes=state.bytes, ms=state.save_ms)

    async def _save(self, target: str, replica: int, proc: QemuProcess, current: dict[str, Any]) -> SavedState:
        """Stream the guest's state to a file while it runs on, then record its fingerprint and digest."""
        path, meta = self._paths(target, replica)
        self._dir.mkdir(parents=True, exist_ok=True)
        self.forget(target, replica)
        part = path.with_suffix(".part")
        try:
            with self._vms.pausing(proc):
                stats = await migrate(proc, file_uri(part), timeout=_SAVE_TIMEOUT_S)
                if await proc.status() != "running":
                    await proc.execute("cont")
            digest = await asyncio.to_thread(state_digest, part)
        except BaseException:
            part.unlink(missing_ok=True)  # half a stream is no state
            raise
        part.replace(path)
        state = SavedState(path, current, digest, path.stat().st_size, time.time(), stats.total_ms)
        doc = {"fingerprint": current, "digest": digest, "bytes": state.bytes, "saved_at": state.saved_at}
        tmp = meta.with_suffix(".json.part")
        tmp.write_text(json.dumps({**doc, "save_ms": state.save_ms}))
        tmp.replace(meta)
        return state

    def saved(self, target: str, replica: int = 0) -> SavedState | None:
        """The guest's saved state as recorded (None when missing or unreadable)."""
        try:
            return self._read(target, replica)
        except WarmRestoreError:
            return None

    def _read(self, target: str, replica: int) -> SavedState:
        path, meta = self._paths(target, replica)
        if not meta.is_file() and not path.is_file():
            raise WarmRestoreError("no saved state yet (it is saved once the guest is first healthy)")
        if not path.is_file():
            raise WarmRestoreError(f"the saved state {path} is missing")
        try:
            doc = json.loads(meta.read_text())
            return SavedState(
                path,
                dict(doc["fingerprint"]),
                str(doc["digest"]),
                int(doc["bytes"]),
                float(doc["saved_at"]),
                float(doc.get("save_ms", 0.0)),
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise WarmRestoreError(f"the saved state's record {meta} is unreadable: {exc}") from exc

    def forget(self, target: str, replica: int | None = None, *, why: str = "") -> None:
        """Drop the saved state of one guest (or of every replica of the target)."""
        replicas = [replica] if replica is not None else self._replicas_on_disk(target)
        for r in replicas:
            for p in self._paths(target, r):
                p.unlink(missing_ok=True)
            if why:
                self._log.info("warm state dropped", target=target, replica=r, reason=why)

    def _replicas_on_disk(self, target: str) -> list[int]:
        found = []
        for p in self._dir.glob(f"{target}-*.json") if self._dir.is_dir() else []:
            tail = p.stem.removeprefix(f"{target}-")
            if tail.isdigit():
                found.append(int(tail))
        return found

    # -- restoring -------------------------------------------------------------------------
    def check_last_restore(self, target: str, replica: int) -> None:
        """A guest restored before and never proven healthy since: its saved state is bad, drop it."""
        key = f"{target}#{replica}"
        if key in self._unproven:
            self._unproven.discard(key)
            self.forget(target, replica, why="the guest last restored from it did not become healthy")

    async def restore(self, target: str, replica: int, host: str) -> Restored:
        """A new QEMU on ``host`` resumes the guest from its saved state and becomes the guest's.

        Raises :class:`WarmRestoreError` naming why when it cannot (nothing is left running then).
        """
        if not self.enabled(target):
            raise WarmRestoreError("the target restarts cold (vm.restart)")
        try:
            state = self._read(target, replica)
        except WarmRestoreError:
            self.forget(target, replica)  # what is left of it is of no use
            raise
        plan = self._vms.plan_for(target, replica, incoming="defer")
        current = fingerprint(self._vms.binary, self._vms.vm_of(target), plan)
        if state.fingerprint != current:
            self.forget(target, replica, why="saved for another config")
            raise WarmRestoreError(
                f"the saved state is for another QEMU or guest config ({_differs(state.fingerprint, current)} changed)"
            )
        started = time.monotonic()
        digest, proc = await asyncio.gather(
            asyncio.to_thread(state_digest, state.path),
            self._vms.launch(target, replica, host, plan=plan),
            return_exceptions=True,
        )
        if isinstance(proc, BaseException):
            raise WarmRestoreError(f"QEMU did not start for the restore: {proc}") from proc
        if digest != state.digest:
            await proc.kill()
            self.forget(target, replica, why="corrupt")
            why = digest if isinstance(digest, BaseException) else f"digest {digest} is not the saved {state.digest}"
            raise WarmRestoreError(f"the saved state {state.path} is unreadable or corrupt: {why}")
        launched = time.monotonic()
        try:
            await receive(proc, load_uri(state.path))
            await wait_running(proc, timeout=_LOAD_TIMEOUT_S)
        except QmpError as exc:
            await proc.kill()
            self.forget(target, replica, why="QEMU did not load it")
            raise WarmRestoreError(f"QEMU did not load the saved state: {exc}") from exc
        loaded = time.monotonic()
        try:
            await self._vms.ops.take_over(target, replica, None, proc)
        except QmpError as exc:
            raise WarmRestoreError(f"the restored guest did not take its ports: {exc}") from exc
        self._unproven.add(f"{target}#{replica}")
        return Restored(proc, state, round((launched - started) * 1000, 1), round((loaded - launched) * 1000, 1))
