"""CPU and memory limits for local processes through cgroups: the ``reallocate`` action's mechanics.

Two backends write the same :class:`Limits`. **cgroup v2**: one directory per replica in
the unified hierarchy (``cpu.max``, ``cpu.weight``, ``memory.max``, ``memory.high``),
after ``+cpu +memory`` is enabled in the parents' ``cgroup.subtree_control``. **cgroup
v1**: one directory per replica in each of the ``cpu`` and ``memory`` hierarchies
(``cpu.cfs_quota_us``, ``cpu.shares``, ``memory.limit_in_bytes``,
``memory.soft_limit_in_bytes``). Either way the replica's group is
``<parent>/novacron.<fleet>/<target>-<replica>``, and the parent is by default the
controller's own cgroup, so limits set here stay inside whatever bounds the controller
itself runs under.

Where neither can be written (no such hierarchy, a controller not offered, a read-only
parent, v2's rule that a cgroup with processes cannot hand controllers to children) the
action is refused, and :attr:`Cgroups.refusal` says why. Every value written is read back
before success is reported; a write that fails puts back what was already changed.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from novacron.errors import ActuatorError
from novacron.resourcespec import CgroupSettings

__all__ = ["Cgroups", "Limits"]

_PERIOD_US = 100_000  # cgroup v2's default cpu.max period, and v1's default cfs_period_us
_PAGE = 4096  # the kernel rounds memory limits down to whole pages
_MOUNTINFO = Path("/proc/self/mountinfo")
_OWN = Path("/proc/self/cgroup")


@dataclass(frozen=True, slots=True)
class Limits:
    """What to set; None leaves that limit as it is."""

    cpu: float | None = None  # cores
    cpu_weight: int | None = None  # 1..10000, 100 is the default share
    memory: int | None = None  # bytes, hard limit
    memory_high: int | None = None  # bytes, where reclaim starts


# (hierarchy, file) → the value the kernel holds, as read.
Values = dict[tuple[str, str], str]


class _V2:
    """The unified hierarchy: one directory per replica."""

    name = "cgroup v2"

    def __init__(self, parent: Path) -> None:
        self.parents = {"unified": parent}

    def prepare(self, fleet_dir: str) -> None:
        """Enable cpu and memory for the fleet's groups (in the parent and the fleet folder)."""
        parent = self.parents["unified"]
        _enable(parent)
        (parent / fleet_dir).mkdir(exist_ok=True)
        _enable(parent / fleet_dir)

    def writes(self, limits: Limits, group: Mapping[str, Path]) -> list[tuple[str, str, str]]:
        """The (hierarchy, file, value) writes that set ``limits``."""
        out = []
        if limits.cpu is not None:
            out.append(("unified", "cpu.max", f"{round(limits.cpu * _PERIOD_US)} {_PERIOD_US}"))
        if limits.cpu_weight is not None:
            out.append(("unified", "cpu.weight", str(limits.cpu_weight)))
        if limits.memory is not None:
            out.append(("unified", "memory.max", str(limits.memory)))
        if limits.memory_high is not None:
            out.append(("unified", "memory.high", str(limits.memory_high)))
        return out


class _V1:
    """The cpu and memory hierarchies of cgroup v1: one directory per replica in each."""

    name = "cgroup v1"

    def __init__(self, cpu: Path, memory: Path) -> None:
        self.parents = {"cpu": cpu, "memory": memory}

    def prepare(self, fleet_dir: str) -> None:
        """v1 needs nothing enabled: a new directory has every file of its hierarchy."""

    def writes(self, limits: Limits, group: Mapping[str, Path]) -> list[tuple[str, str, str]]:
        """The (hierarchy, file, value) writes that set ``limits``."""
        out = []
        if limits.cpu is not None:
            period = int(_read(group["cpu"] / "cpu.cfs_period_us") or _PERIOD_US)
            out.append(("cpu", "cpu.cfs_quota_us", str(round(limits.cpu * period))))
        if limits.cpu_weight is not None:  # systemd's mapping of a v2 weight onto v1 shares
            out.append(("cpu", "cpu.shares", str(max(2, limits.cpu_weight * 1024 // 100))))
        if limits.memory is not None:
            out.append(("memory", "memory.limit_in_bytes", str(limits.memory)))
        if limits.memory_high is not None:
            out.append(("memory", "memory.soft_limit_in_bytes", str(limits.memory_high)))
        return out


_Backend = _V2 | _V1


class Cgroups:
    """The replicas' cgroups of one fleet, on the backend found writable (or a refusal)."""

    def __init__(self, backend: _Backend | None, *, fleet: str, refusal: str | None = None) -> None:
        self.backend = backend
        self.refusal = refusal if backend is None else None
        self._fleet_dir = "novacron." + (re.sub(r"[^A-Za-z0-9_.-]", "_", fleet) or "fleet")

    @classmethod
    def detect(cls, settings: CgroupSettings, *, fleet: str) -> Cgroups:
        """The backend ``settings`` allow that this process may write, else a refusal naming why."""
        mounts = _mounts()
        reasons = []
        if settings.version in ("auto", "v2"):
            v2, why = _find_v2(settings.root, mounts)
            if v2 is not None:
                return cls(v2, fleet=fleet)
            reasons.append(f"cgroup v2: {why}")
        if settings.version in ("auto", "v1"):
            v1, why = _find_v1(mounts)
            if v1 is not None:
                return cls(v1, fleet=fleet)
            reasons.append(f"cgroup v1: {why}")
        why = "; ".join(reasons)
        return cls(None, fleet=fleet, refusal=f"no cgroup this controller may write limits in ({why})")

    @property
    def name(self) -> str:
        """``cgroup v2``, ``cgroup v1`` or ``none``."""
        return "none" if self.backend is None else self.backend.name

    def group(self, target: str, replica: int) -> dict[str, Path]:
        """The replica's directory in each hierarchy."""
        assert self.backend is not None
        leaf = f"{target}-{replica}"
        return {h: parent / self._fleet_dir / leaf for h, parent in self.backend.parents.items()}

    # -- the action --------------------------------------------------------------------
    def apply(self, target: str, replica: int, pids: Iterable[int], limits: Limits) -> tuple[Values, str]:
        """Move ``pids`` into the replica's group and set ``limits``; the values before, and what was set."""
        backend = self._backend()
        backend.prepare(self._fleet_dir)
        group = self.group(target, replica)
        for path in group.values():
            path.mkdir(parents=True, exist_ok=True)
        writes = backend.writes(limits, group)
        before = {(h, f): _read(group[h] / f) for h, f, _ in writes}
        for h, path in group.items():
            _move(path, pids, where=h)
        self.write(group, [(h, f, v) for h, f, v in writes], undo=before)
        return before, ", ".join(f"{f}={v}" for _, f, v in writes)

    def restore(self, target: str, replica: int, before: Values) -> str:
        """Write back the values a previous :meth:`apply` replaced."""
        self._backend()
        group = self.group(target, replica)
        now = {(h, f): _read(group[h] / f) for h, f in before}
        self.write(group, [(h, f, v) for (h, f), v in before.items()], undo=now)
        return ", ".join(f"{f}={v}" for (_, f), v in before.items())

    def write(self, group: Mapping[str, Path], writes: list[tuple[str, str, str]], *, undo: Values) -> None:
        """Write each value and read it back; on any failure, put back what was changed and raise."""
        done: list[tuple[str, str]] = []
        try:
            for h, f, value in writes:
                _write(group[h] / f, value)
                done.append((h, f))
                _check_held(group[h] / f, value)
        except OSError as exc:
            _put_back(group, done, undo)
            raise ActuatorError(f"cannot write {exc.filename or 'a limit'}: {exc.strerror or exc}") from exc
        except ActuatorError:
            _put_back(group, done, undo)
            raise

    def attach(self, target: str, replica: int, pid: int) -> bool:
        """Put a fresh replica process into its group when one exists (limits outlive a restart)."""
        if self.backend is None:
            return False
        group = self.group(target, replica)
        if not all(p.is_dir() for p in group.values()):
            return False
        for h, path in group.items():
            _move(path, [pid], where=h)
        return True

    def remove(self) -> None:
        """Remove the fleet's groups that hold no process any more (at a graceful stop)."""
        if self.backend is None:
            return
        for parent in self.backend.parents.values():
            fleet = parent / self._fleet_dir
            if not fleet.is_dir():
                continue
            for child in fleet.iterdir():
                if child.is_dir():
                    with contextlib.suppress(OSError):
                        child.rmdir()
            with contextlib.suppress(OSError):
                fleet.rmdir()

    def _backend(self) -> _Backend:
        if self.backend is None:
            raise ActuatorError(self.refusal or "no cgroup backend")
        return self.backend


# -- files -------------------------------------------------------------------------------
def _read(path: Path) -> str:
    return path.read_text(encoding="ascii").strip()


def _write(path: Path, value: str) -> None:
    # One write per value, as cgroupfs wants; no truncation games on a pseudo-file.
    with path.open("w", encoding="ascii") as f:
        f.write(value)


def _check_held(path: Path, written: str) -> None:
    held = _read(path)
    if not _same(path.name, written, held):
        raise ActuatorError(f"{path} holds {held!r} after writing {written!r}")


def _same(name: str, written: str, held: str) -> bool:
    if written == held:
        return True
    if name.startswith("memory.") and written.isdigit() and held.isdigit():
        return int(held) == int(written) // _PAGE * _PAGE
    return False


def _put_back(group: Mapping[str, Path], done: list[tuple[str, str]], undo: Values) -> None:
    for h, f in reversed(done):
        with contextlib.suppress(OSError):
            _write(group[h] / f, undo[(h, f)])


def _move(group: Path, pids: Iterable[int], *, where: str) -> None:
    """Move each process into ``group`` (one pid per write, as the kernel reads them) and check it is there."""
    pids = list(pids)
    try:
        with (group / "cgroup.procs").open("w", encoding="ascii") as f:
            for pid in pids:
                f.write(str(pid))
                f.flush()
    except ProcessLookupError:
        pass  # a child that exited meanwhile: nothing left to limit
    except OSError as exc:
        raise ActuatorError(f"cannot move processes into {group} ({where}): {exc.strerror or exc}") from exc
    members = set(_read(group / "cgroup.procs").split())
    missing = [p for p in pids[:1] if str(p) not in members]
    if missing:
        raise ActuatorError(f"process {missing[0]} is not in {group} after moving it")


def _enable(cgroup: Path) -> None:
    """Hand cpu and memory to ``cgroup``'s children (v2), unless they already are."""
    control = cgroup / "cgroup.subtree_control"
    have = {c.lstrip("+") for c in _read(control).split()}
    wanted = [c for c in ("cpu", "memory") if c not in have]
    if not wanted:
        return
    try:
        _write(control, " ".join(f"+{c}" for c in wanted))
    except OSError as exc:
        raise ActuatorError(f"cannot enable {', '.join(wanted)} in {control}: {exc.strerror or exc}") from exc


# -- discovery ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Mount:
    root: str  # the hierarchy path mounted there
    point: Path
    fstype: str
    options: frozenset[str]


def _mounts() -> list[_Mount]:
    out = []
    with contextlib.suppress(OSError):
        for line in _MOUNTINFO.read_text(encoding="utf-8").splitlines():
            left, _, right = line.partition(" - ")
            fields, tail = left.split(), right.split()
            if len(fields) >= 5 and len(tail) >= 3 and tail[0] in ("cgroup", "cgroup2"):
                out.append(_Mount(fields[3], Path(fields[4]), tail[0], frozenset(tail[2].split(","))))
    return out


def _own_paths() -> dict[str, str]:
    """Controller (``""`` for v2) → this process's cgroup path."""
    out: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in _OWN.read_text(encoding="utf-8").splitlines():
            _, controllers, path = line.split(":", 2)
            for name in controllers.split(",") if controllers else [""]:
                out[name] = path
    return out


def _inside(mount: _Mount, path: str) -> Path:
    """Where cgroup ``path`` of ``mount``'s hierarchy is on disk (its mount point when it lies outside)."""
    rel = os.path.relpath(path, mount.root)
    return mount.point if rel.startswith("..") else (mount.point / rel).resolve()


def _find_v2(root: str | None, mounts: list[_Mount]) -> tuple[_V2 | None, str]:
    mount = next((m for m in mounts if m.fstype == "cgroup2"), None)
    if root is not None:
        parent = Path(root)
    elif mount is None:
        return None, "no cgroup2 hierarchy is mounted"
    else:
        parent = _inside(mount, _own_paths().get("", "/"))
    if not (parent / "cgroup.controllers").is_file():
        return None, f"{parent} is not a cgroup2 directory"
    offered = set(_read(parent / "cgroup.controllers").split())
    if not {"cpu", "memory"} <= offered:
        return None, f"{parent} offers no cpu and memory controllers (it has: {', '.join(sorted(offered)) or 'none'})"
    if not os.access(parent / "cgroup.subtree_control", os.W_OK):
        return None, f"{parent} is not writable by this controller (delegate a subtree to it: cgroups.root)"
    at_top = mount is not None and parent == mount.point
    if not at_top and _read(parent / "cgroup.procs"):
        return None, (
            f"{parent} holds processes, and cgroup v2 hands cpu and memory to children only of a cgroup "
            "without any: delegate an empty subtree (cgroups.root)"
        )
    return _V2(parent), ""


def _find_v1(mounts: list[_Mount]) -> tuple[_V1 | None, str]:
    own = _own_paths()
    found: dict[str, Path] = {}
    for name in ("cpu", "memory"):
        mount = next((m for m in mounts if m.fstype == "cgroup" and name in m.options), None)
        if mount is None:
            return None, f"no {name} hierarchy is mounted"
        path = _inside(mount, own.get(name, "/"))
        if not os.access(path, os.W_OK):
            return None, f"{path} is not writable by this controller"
        found[name] = path
    return _V1(found["cpu"], found["memory"]), ""
