"""Physical and policy constants of the twin, as frozen records.

Every number the models use lives here with its unit, so a what-if, a forecast and the
SimPy baseline all read the same constants and a test can change one at a time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from novacron.errors import InputError

__all__ = ["HealerParams", "PhysicsParams"]


def _check_positive(record: object, *, allow_zero: tuple[str, ...] = ()) -> None:
    """Refuse non-finite or non-positive numeric fields, naming the field."""
    name = type(record).__name__
    for f in fields(record):  # type: ignore[arg-type]
        value = getattr(record, f.name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        low_ok = value >= 0 if f.name in allow_zero else value > 0
        if not math.isfinite(value) or not low_ok:
            bound = ">= 0" if f.name in allow_zero else "> 0"
            raise InputError(f"must be finite and {bound}, got {value!r}", where=f"{name}.{f.name}")


@dataclass(frozen=True, slots=True)
class PhysicsParams:
    """Constants of the compute, storage, network and thermal models (SI-ish units)."""

    dt_s: float = 1.0  # fixed step of the array models
    service_time_s: float = 0.05  # mean request service time on one core (M/M/c)
    max_backlog_s: float = 60.0  # queue beyond this many seconds of work is dropped
    io_base_latency_s: float = 0.001  # storage latency when idle (M/M/1 below)
    net_base_latency_s: float = 0.0002  # per-link latency when idle
    ambient_c: float = 25.0
    throttle_c: float = 85.0  # above this the CPU clocks down
    critical_c: float = 100.0  # above this the host powers off
    throttle_factor: float = 0.5  # capacity left while throttled
    idle_power_w: float = 100.0
    max_power_w: float = 400.0
    dissipation_w_per_c: float = 8.9  # ~70 °C at full load with healthy cooling
    thermal_tau_s: float = 300.0  # heat capacity / dissipation
    runaway_cooling_factor: float = 0.2  # dissipation left after a cooling failure
    leak_gb_per_s: float = 0.01  # memory leak rate
    disk_fill_gb_per_s: float = 1.0  # runaway writer
    noisy_extra_cores: float = 24.0  # a noisy neighbour's extra CPU demand
    probe_timeout_s: float = 1.0  # a request slower than this fails the health probe

    def __post_init__(self) -> None:
        _check_positive(self)
        if not self.throttle_c < self.critical_c:
            raise InputError("must be below critical_c", where="PhysicsParams.throttle_c")
        if self.throttle_factor > 1.0:
            raise InputError("must be <= 1", where="PhysicsParams.throttle_factor")


@dataclass(frozen=True, slots=True)
class HealerParams:
    """The built-in healing policy: how it probes, how long its actions take."""

    probe_interval_s: float = 5.0
    failure_threshold: int = 2  # consecutive failed probes before a fault is declared
    detection_delay_s: float = 0.0  # extra pipeline delay between detection and planning
    restart_s: float = 30.0
    migrate_s: float = 60.0
    replace_s: float = 900.0  # host repair/replacement (power, cooling, hardware)
    cleanup_s: float = 120.0
    reroute_s: float = 45.0
    reallocate_s: float = 1.0  # new CPU limits in force
    memory_high: float = 0.9  # proactive restart above this fraction of the memory limit
    disk_high: float = 0.9  # proactive cleanup above this fraction of the disk
    max_restarts: int = 2  # restarts of one VM within a fault before migrating it
    enabled: bool = True

    def __post_init__(self) -> None:
        _check_positive(self, allow_zero=("detection_delay_s",))
        for name in ("memory_high", "disk_high"):
            if getattr(self, name) > 1.0:
                raise InputError("must be <= 1", where=f"HealerParams.{name}")
