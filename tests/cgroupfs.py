"""A folder that stands in for a delegated cgroup2 subtree, for machines without one.

A real cgroupfs fills each new directory with its interface files; a plain folder cannot,
so :func:`fake_cgroup2` lays out the root and the groups a fleet's replicas will use,
each with the files and default values the kernel gives a fresh cgroup2 directory.
Writes then land in ordinary files, and reading them back shows what was written.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

__all__ = ["fake_cgroup2"]

_GROUP_DEFAULTS = {
    "cgroup.controllers": "",
    "cgroup.subtree_control": "",
    "cgroup.procs": "",
    "cpu.max": "max 100000",
    "cpu.weight": "100",
    "memory.max": "max",
    "memory.high": "max",
}


def _group(path: Path, controllers: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    for name, value in _GROUP_DEFAULTS.items():
        (path / name).write_text(value + "\n")
    (path / "cgroup.controllers").write_text(controllers + "\n")


def fake_cgroup2(root: Path, *, fleet: str, replicas: Iterable[str], controllers: str = "cpu io memory pids") -> Path:
    """A delegated cgroup2 root offering ``controllers``, with ``novacron.<fleet>/<replica>`` groups ready."""
    _group(root, controllers)
    _group(root / f"novacron.{fleet}", controllers)
    for leaf in replicas:
        _group(root / f"novacron.{fleet}" / leaf, controllers)
    return root
