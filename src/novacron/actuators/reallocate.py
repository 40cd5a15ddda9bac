"""The ``reallocate`` action for process targets: the spec's limits onto each replica's cgroup.

The limits are the target's ``reallocate:`` block, or the action's own parameters (``cpu``,
``cpu_weight``, ``memory``, ``memory_high``, as in the spec) for a manual one. The values
each replica's cgroup held before are kept by action id, so the inverse (``inverse_of``
that action) writes exactly those back. Which cgroup backend is used is found on first
use (:meth:`~novacron.actuators.cgroups.Cgroups.detect`); where none is writable, the
action is refused with the reason.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from typing import Any

import psutil
from pydantic import ValidationError

from novacron.actuators.cgroups import Cgroups, Limits, Values
from novacron.errors import ActuatorError
from novacron.model import Action
from novacron.resourcespec import ReallocateSpec
from novacron.settings import TargetSpec
from novacron.telemetry import get_logger

__all__ = ["LIMIT_PARAMS", "Reallocator"]

LIMIT_PARAMS = ("cpu", "cpu_weight", "memory", "memory_high")


class Reallocator:
    """Sets, records and restores the replicas' limits of one fleet."""

    def __init__(self, detect: Callable[[], Cgroups]) -> None:
        self._detect = detect
        self._cgroups: Cgroups | None = None
        self._before: dict[str, dict[int, Values]] = {}  # action id → replica → values replaced

    @property
    def cgroups(self) -> Cgroups:
        """The fleet's cgroups (found on first use)."""
        if self._cgroups is None:
            self._cgroups = self._detect()
        return self._cgroups

    def refusal(self, tspec: TargetSpec, params: Mapping[str, Any]) -> str | None:
        """Why reallocate cannot run on ``tspec``'s replicas here, or None."""
        if tspec.reallocate is None and not any(k in params for k in LIMIT_PARAMS):
            return f"{tspec.name} has no limits to apply (give it a reallocate: block in the spec)"
        return self.cgroups.refusal

    def apply(self, action: Action, tspec: TargetSpec, running: Mapping[int, int]) -> str:
        """Set the limits on every running selected replica (or, for an inverse, put the old ones back)."""
        cgroups = self.cgroups
        if cgroups.backend is None:
            raise ActuatorError(f"refused: {cgroups.refusal}")
        if action.inverse_of is not None:
            return self._restore(action, tspec.name)
        if not running:
            raise ActuatorError(f"no replica of {tspec.name} is running: nothing to limit")
        limits = _limits(action.params, tspec)
        done: dict[int, Values] = {}
        details = []
        try:
            for replica, pid in sorted(running.items()):
                done[replica], detail = cgroups.apply(tspec.name, replica, _tree(pid), limits)
                details.append(f"replica {replica}: {detail}")
        except ActuatorError:
            for replica, values in done.items():  # nothing half-applied: the replicas already set go back
                with contextlib.suppress(ActuatorError):
                    cgroups.restore(tspec.name, replica, values)
            raise
        self._before[action.id] = done
        return f"{cgroups.name}: " + "; ".join(details)

    def _restore(self, action: Action, target: str) -> str:
        before = self._before.pop(str(action.inverse_of), None)
        if before is None:
            raise ActuatorError(
                f"the limits before {action.inverse_of} are not known to this controller "
                "(it restarted since); set them with reallocate and explicit limits"
            )
        details = [f"replica {r}: {self.cgroups.restore(target, r, v)}" for r, v in sorted(before.items())]
        return f"{self.cgroups.name}: restored " + "; ".join(details)

    def attach(self, target: str, replica: int, pid: int) -> None:
        """A fresh replica joins the group an earlier reallocate made (if the backend is known)."""
        if self._cgroups is None or self._cgroups.backend is None:
            return
        try:
            self._cgroups.attach(target, replica, pid)
        except ActuatorError as exc:  # the replica runs regardless; its limits are what failed
            get_logger(component="cgroups").warning("limits not kept", target=target, replica=replica, error=str(exc))

    def forget_groups(self) -> None:
        """Remove the fleet's emptied groups (a graceful stop)."""
        if self._cgroups is not None:
            self._cgroups.remove()


def _limits(params: Mapping[str, Any], tspec: TargetSpec) -> Limits:
    """The action's own limits when it gives any, else the target's ``reallocate`` block."""
    given = {k: params[k] for k in LIMIT_PARAMS if k in params}
    try:
        spec = ReallocateSpec.model_validate(given) if given else tspec.reallocate
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "params"
        raise ActuatorError(f"params.{where}: {str(first['msg']).removeprefix('Value error, ')}") from None
    if spec is None:
        raise ActuatorError(f"{tspec.name} has no limits to apply (give it a reallocate: block in the spec)")
    return Limits(cpu=spec.cpu, cpu_weight=spec.cpu_weight, memory=spec.memory, memory_high=spec.memory_high)


def _tree(pid: int) -> list[int]:
    """The replica's process and every descendant (they share its limits)."""
    try:
        return [pid, *(c.pid for c in psutil.Process(pid).children(recursive=True))]
    except psutil.Error:
        return [pid]
