"""Look-ahead: project the fleet hours ahead from its present state and a workload forecast.

The projection forks the present (temperatures, backlogs, disks filling, leaks growing,
hosts down, actions in flight), swaps in the workload forecast — a diurnal model or a
seasonal-naive repeat of the last day of a trace — and runs the physics on a coarse step,
summarising each hour.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from novacron.errors import InputError
from novacron.twin.sim import Simulator
from novacron.twin.workload import Workload

__all__ = ["ForecastRow", "forecast"]


@dataclass(frozen=True, slots=True)
class ForecastRow:
    """The fleet during one projected hour (peaks are over the hour's steps)."""

    hour: int
    mean_util: float
    peak_util: float  # the busiest host
    hosts_over_80: int  # peak count of up hosts above 80 % CPU
    hosts_saturated: int  # peak count of hosts with queued work beyond capacity
    hosts_throttled: int
    peak_temp_c: float
    p95_latency_ms: float
    peak_disk_fill: float  # fullest disk, fraction of capacity
    peak_mem_fill: float  # fullest host memory, fraction of capacity
    availability: float  # mean fraction of VMs passing their probe


def forecast(
    sim: Simulator, hours: float, *, workload: Workload | None = None, step_s: float = 60.0
) -> list[ForecastRow]:
    """Hourly projection for ``hours`` ahead under ``workload`` (default: the current one)."""
    if not (hours > 0 and math.isfinite(hours)):
        raise InputError(f"must be finite and > 0, got {hours}", where="hours")
    if not (step_s > 0 and math.isfinite(step_s)):
        raise InputError(f"must be finite and > 0, got {step_s}", where="step_s")
    twin = sim.fork(workload=workload, dt_s=step_s)
    steps_per_hour = max(1, round(3600.0 / step_s))
    rows = []
    for hour in range(math.ceil(hours)):
        acc = _Hour()
        for _ in range(steps_per_hour):
            twin.step()
            acc.add(twin)
        rows.append(acc.row(hour + 1))
    return rows


class _Hour:
    """Accumulates one hour of samples."""

    def __init__(self) -> None:
        self.util: list[float] = []
        self.peak_util = self.peak_temp = self.disk = self.mem = 0.0
        self.over = self.sat = self.hot = 0
        self.lat: list[float] = []
        self.avail: list[float] = []

    def add(self, twin: Simulator) -> None:
        s, topo = twin.state, twin.topo
        up = s.host_up
        util = s.util[up]
        self.util.append(float(util.mean()) if util.size else 0.0)
        self.peak_util = max(self.peak_util, float(util.max()) if util.size else 0.0)
        self.over = max(self.over, int((util > 0.8).sum()))
        self.sat = max(self.sat, int((s.backlog > 0).sum()))
        self.hot = max(self.hot, int(s.throttled.sum()))
        self.peak_temp = max(self.peak_temp, float(s.temp_c.max()))
        if up.any():
            self.lat.append(float(np.percentile(s.host_latency_s()[up], 95)))
        self.disk = max(self.disk, float((s.disk_used_gb / topo.host_disk_gb).max()))
        self.mem = max(self.mem, float((s.host_mem_gb / topo.host_mem_gb).max()))
        self.avail.append(float(s.vm_ok(twin.params).mean()) if topo.n_vms else 1.0)

    def row(self, hour: int) -> ForecastRow:
        return ForecastRow(
            hour=hour, mean_util=float(np.mean(self.util)), peak_util=self.peak_util,
            hosts_over_80=self.over, hosts_saturated=self.sat, hosts_throttled=self.hot,
            peak_temp_c=self.peak_temp,
            p95_latency_ms=1000.0 * float(np.max(self.lat)) if self.lat else math.inf,
            peak_disk_fill=self.disk, peak_mem_fill=self.mem, availability=float(np.mean(self.avail)),
        )  # fmt: skip
