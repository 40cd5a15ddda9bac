"""What a twin run remembers: fault records and the run summary."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from novacron.twin.faults import TwinFault

__all__ = ["FaultRecord", "RunSummary", "summarise"]


@dataclass(slots=True)
class FaultRecord:
    """One injected fault: when it struck, when the healer noticed, when service came back."""

    id: int
    kind: TwinFault
    vm: int
    host: int
    t_inject: float
    t_detect: float | None = None
    t_recover: float | None = None
    t_impact: float | None = None  # service first failed (None: never, e.g. fixed proactively)

    @property
    def prevented(self) -> bool:
        """Fixed before the VM ever failed a probe."""
        return self.t_recover is not None and self.t_impact is None

    @property
    def ttr_s(self) -> float | None:
        """Downtime: impact → recover, if the fault hurt and was repaired."""
        if self.t_recover is None or self.t_impact is None:
            return None
        return self.t_recover - self.t_impact

    @property
    def ttd_s(self) -> float | None:
        """Impact → detect (0 if the healer noticed before the impact)."""
        if self.t_detect is None or self.t_impact is None:
            return None
        return max(0.0, self.t_detect - self.t_impact)


@dataclass(frozen=True, slots=True)
class RunSummary:
    """Totals of a run, ready to print or serialise."""

    sim_seconds: float
    faults: int
    healed: int
    prevented: int
    open: int
    faults_by_kind: dict[str, int]
    mttr_s: dict[str, float]  # mean, p50, p90, p99, max over recovered faults
    mttd_s: dict[str, float]
    mttr_by_kind: dict[str, float]
    actions_by_kind: dict[str, int]
    availability: float  # mean fraction of VMs passing their probe, sampled at probes
    extra: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        """A JSON-serialisable view."""
        return {
            "sim_seconds": self.sim_seconds, "faults": self.faults, "healed": self.healed,
            "prevented": self.prevented, "open": self.open, "faults_by_kind": self.faults_by_kind,
            "mttr_s": self.mttr_s, "mttd_s": self.mttd_s, "mttr_by_kind": self.mttr_by_kind,
            "actions_by_kind": self.actions_by_kind, "availability": self.availability, **self.extra,
        }  # fmt: skip


def _stats(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    arr = np.asarray(values)
    return {
        "mean": float(arr.mean()), "p50": float(np.percentile(arr, 50)),
        "p90": float(np.percentile(arr, 90)), "p99": float(np.percentile(arr, 99)),
        "max": float(arr.max()),
    }  # fmt: skip


def summarise(records: list[FaultRecord], actions: Counter[str], availability: float, sim_seconds: float) -> RunSummary:
    """Aggregate fault records and action counts into a :class:`RunSummary`."""
    ttr = [r.ttr_s for r in records if r.ttr_s is not None]
    prevented = sum(r.prevented for r in records)
    ttd = [r.ttd_s for r in records if r.ttd_s is not None]
    by_kind: dict[str, list[float]] = {}
    for r in records:
        if r.ttr_s is not None:
            by_kind.setdefault(r.kind.value, []).append(r.ttr_s)
    return RunSummary(
        sim_seconds=sim_seconds,
        faults=len(records),
        healed=len(ttr),
        prevented=prevented,
        open=sum(r.t_recover is None for r in records),
        faults_by_kind=dict(sorted(Counter(r.kind.value for r in records).items())),
        mttr_s=_stats([float(x) for x in ttr]),
        mttd_s=_stats([float(x) for x in ttd]),
        mttr_by_kind={k: float(np.mean(v)) for k, v in sorted(by_kind.items())},
        actions_by_kind=dict(sorted(actions.items())),
        availability=availability,
    )
