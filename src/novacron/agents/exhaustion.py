"""Resource-exhaustion predictor: per-process memory, open files, threads, connections, disk.

Readings come from psutil for every replica's pid; limits from the process's own rlimits
(open files), the spec's ``metrics.limits`` (any resource by name) or the machine (memory,
threads, disk). The forecasting package's tracker tests each series for a leak and
estimates the time to the limit; when that falls inside the lead time the agent proposes
a restart of that replica (or a clean-up of the target's declared paths for disk), with
the lead time in the output.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import psutil

from novacron.agents._util import output, propose
from novacron.agents.base import AgentContext, AgentOutput, Finding, Proposal
from novacron.forecasting.exhaustion import ExhaustionConfig
from novacron.forecasting.tracker import ExhaustionMonitor
from novacron.model import ActionKind
from novacron.settings import TargetSpec

__all__ = ["ExhaustionAgent", "Reading", "psutil_readings"]


@dataclass(frozen=True, slots=True)
class Reading:
    """One resource of one process now, and its limit."""

    value: float
    limit: float


def psutil_readings(pid: int, disk_paths: list[str]) -> dict[str, Reading]:
    """Memory, open files, threads, connections and disk use of one process (empty if gone)."""
    try:
        p = psutil.Process(pid)
        with p.oneshot():
            nofile = p.rlimit(psutil.RLIMIT_NOFILE)[0] if hasattr(p, "rlimit") else 1024
            nofile = nofile if nofile > 0 else 1024 * 1024
            out = {
                "memory": Reading(float(p.memory_info().rss), float(psutil.virtual_memory().total)),
                "open_files": Reading(float(p.num_fds()), float(nofile)),
                "threads": Reading(float(p.num_threads()), 4096.0),
                "connections": Reading(float(len(p.net_connections(kind="inet"))), float(nofile)),
            }
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return {}
    for path in disk_paths:
        try:
            usage = shutil.disk_usage(path)
        except OSError:
            continue
        out[f"disk:{path}"] = Reading(float(usage.used), float(usage.total))
    return out


Sampler = Callable[[int, list[str]], Mapping[str, Reading]]
# Names the spec's ``metrics.limits`` may use for the resources this agent samples.
_ALIASES = {
    "rss_bytes": "memory",
    "memory": "memory",
    "open_files": "open_files",
    "threads": "threads",
    "connections": "connections",
}


def _declared_limits(tspec: TargetSpec) -> dict[str, float]:
    if tspec.metrics is None:
        return {}
    return {_ALIASES[lim.metric]: lim.limit for lim in tspec.metrics.limits if lim.metric in _ALIASES}


class ExhaustionAgent:
    """Leak detection and restart-before-the-limit, per replica and resource."""

    name = "exhaustion"
    interval_s = 15.0

    def __init__(
        self, *, lead_time_s: float = 900.0, sampler: Sampler = psutil_readings, config: ExhaustionConfig | None = None
    ) -> None:
        self.lead_time_s = lead_time_s
        self.sampler = sampler
        self.monitor = ExhaustionMonitor(config)
        self._pids: dict[str, int] = {}

    def feed(self, series: str, t: float, readings: Mapping[str, Reading]) -> None:
        """Add one reading per resource of one series (``target#replica``)."""
        for resource, r in readings.items():
            self.monitor.observe(series, resource, t, r.value, r.limit)

    def forget(self, series: str) -> None:
        """The process behind a series was restarted: its resources start afresh."""
        self.monitor.restart(series)

    def run(self, context: AgentContext) -> AgentOutput:
        """Sample every replica, then propose actions for leaks due within the lead time."""
        now = context.clock.now()
        lead = float(context.options.get("lead_time_s", self.lead_time_s))
        for tspec in context.spec.targets:
            for replica, pid in enumerate(context.pids(tspec.name)):
                series = f"{tspec.name}#{replica}"
                if self._pids.get(series) not in (None, pid):
                    self.forget(series)
                self._pids[series] = pid
                readings = dict(self.sampler(pid, list(tspec.cleanup_paths)))
                declared = {**_declared_limits(tspec), **dict(context.options.get("limits", {}))}
                for resource, limit in declared.items():  # a declared limit beats the machine's
                    if resource in readings:
                        readings[resource] = Reading(readings[resource].value, limit)
                self.feed(series, now, readings)
        return self.judge(context, now, lead)

    def judge(self, context: AgentContext, now: float, lead: float) -> AgentOutput:
        """Findings and proposals from the current forecasts."""
        findings: list[Finding] = []
        proposals: list[Proposal] = []
        for pred in self.monitor.predictions(now):
            target, _, replica = pred.target.partition("#")
            evidence = {
                "resource": pred.resource,
                "eta_s": round(pred.eta_s, 1),
                "lead_time_s": lead,
                "replica": int(replica or 0),
                **{k: v for k, v in pred.evidence.items() if isinstance(v, float | int | str)},
            }
            findings.append(
                Finding(
                    target,
                    f"leak:{pred.resource}",
                    f"{pred.resource} reaches its limit in {pred.eta_s:.0f}s",
                    pred.confidence,
                    evidence,
                )
            )
            # Act only on a forecast due within the lead time and no further ahead than the history
            # behind it reaches: a few minutes of one rising GC tooth say nothing about the next quarter hour.
            span = float(pred.evidence.get("window_end", 0.0)) - float(pred.evidence.get("window_start", 0.0))
            if pred.eta_s > lead or pred.eta_s > span:
                continue
            disk = pred.resource.startswith("disk:")
            kind = ActionKind.CLEANUP if disk else ActionKind.RESTART
            params = {"path": pred.resource[5:]} if disk else {"replica": int(replica or 0)}
            proposals.append(
                propose(
                    self.name,
                    kind,
                    target,
                    key=f"{pred.target}/{pred.resource}/{int(now // lead)}",
                    reason=f"{pred.resource} exhausted in {pred.eta_s:.0f}s (lead time {lead:.0f}s)",
                    rollback="nothing to undo: a restart or clean-up frees the resource; the process keeps its spec",
                    params=params,
                )
            )
        return output(self.name, context, findings, proposals, f"{len(findings)} leak(s), {len(proposals)} due")
