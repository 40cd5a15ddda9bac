"""Checks before anything starts: every target's program exists, and its ports are free.

``novacron validate`` and ``novacron run`` call these so that a missing binary (exit 2)
or a port held by a stranger (a note, then the start fails naming it) is said up front,
naming the field and, for a port, the holder's pid and command.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Collection
from pathlib import Path

from novacron.actuators.ownership import listening, port_holder
from novacron.actuators.process import replica_port
from novacron.errors import ConfigError
from novacron.settings import FleetSpec, TargetSpec

__all__ = ["check_binaries", "held_ports"]


def _program_problem(tspec: TargetSpec) -> str | None:
    program = tspec.command[0]
    if "{" in program:
        return None  # filled per replica; checked when it starts
    if os.sep in program:
        path = Path(program)
        if not path.is_absolute() and tspec.cwd:
            path = Path(tspec.cwd) / path
        if not path.is_file():
            return f"{program}: no such file"
        if not os.access(path, os.X_OK):
            return f"{program}: not executable"
        return None
    search = tspec.env.get("PATH", os.environ.get("PATH", ""))
    return None if shutil.which(program, path=search) else f"{program}: not found in PATH"


def check_binaries(spec: FleetSpec, *, source: str = "spec", only: Collection[str] | None = None) -> None:
    """Raise a :class:`ConfigError` naming ``targets[i].command[0]`` for every program that cannot run.

    ``only``: the targets to check (those this node starts), still numbered as in the whole
    spec, so the path points at the right entry of the file ``source`` names.
    """
    problems = [
        f"targets[{i}].command[0]: {why}"
        for i, t in enumerate(spec.targets)
        if (only is None or t.name in only)
        and t.kind == "process"  # others run no command here
        and (why := _program_problem(t)) is not None
    ]
    if problems:
        raise ConfigError("; ".join(problems), where=source)


def held_ports(spec: FleetSpec, *, ours: Collection[str] = ()) -> list[str]:
    """Every target port another process listens on, as ``targets[i].port: … held by pid N (cmd)``.

    Targets named in ``ours`` are skipped: their processes (adopted from a previous
    controller) hold the ports rightly.
    """
    out: list[str] = []
    ports = listening()
    for i, tspec in enumerate(spec.targets):
        if tspec.name in ours:
            continue
        for replica in range(tspec.replicas):
            port = replica_port(tspec, replica)
            if port is not None and (holder := port_holder(port, ports)) is not None:
                out.append(f"targets[{i}].port: port {port} (replica {replica}) is held by {holder}")
    return out
