"""The spec's resource blocks: a target's ``reallocate`` limits and the fleet's ``cgroups`` settings.

Quantities are written as Kubernetes writes them, because that is what an SRE reads
without a second look: CPU in cores (``1.5``) or millicores (``"500m"``), memory in bytes
or with a decimal (``k``, ``M``, ``G``, ``T``) or binary (``Ki``, ``Mi``, ``Gi``, ``Ti``)
suffix. Values are normalised at load: cores as a float, bytes as an int.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

__all__ = ["Bytes", "CgroupSettings", "Cores", "ReallocateSpec", "parse_cpu", "parse_memory"]

_MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(k|K|M|G|T|Ki|Mi|Gi|Ti)?\s*$")
_UNITS = {
    None: 1,
    "k": 10**3,
    "K": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}
_MIN_CPU = 0.01  # 1 ms of CPU per 100 ms period: the kernel's smallest useful quota
_MIN_MEMORY = 4 * 2**20  # below this a process is killed before it starts


def parse_cpu(value: object) -> float:
    """Cores from ``1.5``, ``2`` or ``"500m"``; ValueError naming the accepted forms."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        cores = float(value)
    elif isinstance(value, str) and re.fullmatch(r"\s*\d+\s*m\s*", value):
        cores = int(value.strip()[:-1]) / 1000.0
    elif isinstance(value, str) and re.fullmatch(r"\s*\d+(\.\d+)?\s*", value):
        cores = float(value)
    else:
        raise ValueError(f"{value!r} is not a CPU quantity (cores such as 1.5, or millicores such as '500m')")
    if not math.isfinite(cores) or cores < _MIN_CPU:
        raise ValueError(f"{value!r} is below the smallest CPU limit ({_MIN_CPU} cores, '10m')")
    return cores


def parse_memory(value: object) -> int:
    """Bytes from ``268435456``, ``"256Mi"`` or ``"1G"``; ValueError naming the accepted forms."""
    if isinstance(value, int) and not isinstance(value, bool):
        size = value
    elif isinstance(value, str) and (m := _MEMORY.match(value)):
        size = int(float(m.group(1)) * _UNITS[m.group(2)])
    else:
        raise ValueError(f"{value!r} is not a memory quantity (bytes, or a size such as '256Mi' or '1G')")
    if size < _MIN_MEMORY:
        raise ValueError(f"{value!r} is below the smallest memory limit (4Mi)")
    return size


Cores = Annotated[float, BeforeValidator(parse_cpu)]
"""A CPU quantity, normalised to cores."""
Bytes = Annotated[int, BeforeValidator(parse_memory)]
"""A memory quantity, normalised to bytes."""


class ReallocateSpec(BaseModel):
    """The limits the ``reallocate`` action gives each replica of a process target.

    ``cpu`` caps the replica at that many cores (cgroup v2 ``cpu.max``, v1
    ``cpu.cfs_quota_us``); ``cpu_weight`` (1–10000, default 100) is its share when the
    CPU is contended (v2 ``cpu.weight``, v1 ``cpu.shares``), the cure for a noisy
    neighbour; ``memory`` is the hard limit (``memory.max`` / ``memory.limit_in_bytes``)
    and ``memory_high`` where reclaim starts (``memory.high`` / ``memory.soft_limit_in_bytes``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    cpu: Cores | None = Field(None, description="Cores (1.5) or millicores ('500m').")
    cpu_weight: int | None = Field(None, ge=1, le=10_000, description="Share under contention (default 100).")
    memory: Bytes | None = Field(None, description="Hard limit: bytes or '512Mi'.")
    memory_high: Bytes | None = Field(None, description="Reclaim above this: bytes or '400Mi'.")

    @model_validator(mode="after")
    def _something_and_consistent(self) -> ReallocateSpec:
        if self.cpu is None and self.cpu_weight is None and self.memory is None and self.memory_high is None:
            raise ValueError("give at least one of cpu, cpu_weight, memory, memory_high")
        if self.memory is not None and self.memory_high is not None and self.memory_high > self.memory:
            raise ValueError("memory_high is above memory (reclaim must start below the hard limit)")
        return self


class CgroupSettings(BaseModel):
    """Where ``reallocate`` may write limits.

    ``version: auto`` takes cgroup v2 when its unified hierarchy offers the cpu and memory
    controllers and the parent is writable, else cgroup v1's cpu and memory hierarchies;
    ``v2`` or ``v1`` insists on one (refused, with the reason, where it cannot be written).
    The controller creates ``novacron.<fleet>/<target>-<replica>`` under the parent: by
    default its own cgroup in each hierarchy (a delegated subtree), so the limits it sets
    stay inside whatever bounds the controller itself runs under. ``root`` names a cgroup2
    directory to use as the parent instead (a subtree delegated to the controller).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: Literal["auto", "v1", "v2"] = "auto"
    root: str | None = Field(None, min_length=1, description="v2: the delegated cgroup2 directory to create under.")

    @model_validator(mode="after")
    def _root_is_v2(self) -> CgroupSettings:
        if self.root is not None and self.version == "v1":
            raise ValueError("root is a cgroup2 directory, so version must be v2 or auto")
        if self.root is not None and not self.root.startswith("/"):
            raise ValueError(f"root {self.root!r} is not an absolute path")
        return self
