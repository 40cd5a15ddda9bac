"""Prometheus metrics (on an injected registry) and structlog logging (console or JSON lines).

Counters and histograms expose no ``*_created`` series: they double the series count for
nothing a dashboard or alert uses. Per-target series are read from the controller's state
at scrape time (:class:`FleetCollector`), so they cost nothing between scrapes and can
never disagree with what ``novacron status`` shows.
"""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TextIO, cast

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = ["FleetCollector", "FleetSample", "Metrics", "TargetSample", "configure_logging", "get_logger"]

disable_created_metrics()  # type: ignore[no-untyped-call]

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_MTTR_BUCKETS = (0.1, 0.25, 0.5, 1.0, 1.5, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
PRIORITIES = ("P0", "P1", "P2", "P3", "P4")


@dataclass(frozen=True, slots=True)
class TargetSample:
    """One target as the metrics see it."""

    target: str
    up: bool
    restarts: int
    running: int
    desired: int
    quarantined: bool
    healing: bool
    quarantined_until: float | None = None  # wall-clock end of the quarantine in force


@dataclass(frozen=True, slots=True)
class FleetSample:
    """Everything the per-target and per-priority series are read from, at one instant."""

    targets: list[TargetSample]
    open_by_priority: Mapping[str, int] = field(default_factory=dict)
    needs_human: int = 0


class FleetCollector(Collector):
    """Per-target and per-priority series from a snapshot function, called at each scrape."""

    def __init__(self, snapshot: Callable[[], FleetSample]) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        """Prometheus' collector protocol."""
        fleet = self.snapshot()
        families = {
            "up": GaugeMetricFamily(
                "novacron_target_up", "1 when every replica of the target is healthy.", labels=["target"]
            ),
            "running": GaugeMetricFamily(
                "novacron_target_replicas_running", "Replicas running now.", labels=["target"]
            ),
            "desired": GaugeMetricFamily("novacron_target_replicas_desired", "Replicas wanted.", labels=["target"]),
            "quarantined": GaugeMetricFamily(
                "novacron_target_quarantined", "1 while the target is in flap quarantine.", labels=["target"]
            ),
            "healing": GaugeMetricFamily(
                "novacron_target_healing", "1 while an action works on the target.", labels=["target"]
            ),
            "until": GaugeMetricFamily(
                "novacron_target_quarantined_until_seconds",
                "When the target's flap quarantine ends (Unix time); only while it is quarantined.",
                labels=["target"],
            ),
        }
        restarts = CounterMetricFamily(
            "novacron_target_restarts", "Replica (re)starts after the first, by target.", labels=["target"]
        )
        for t in fleet.targets:
            families["up"].add_metric([t.target], float(t.up))
            families["running"].add_metric([t.target], t.running)
            families["desired"].add_metric([t.target], t.desired)
            families["quarantined"].add_metric([t.target], float(t.quarantined))
            families["healing"].add_metric([t.target], float(t.healing))
            if t.quarantined_until is not None:
                families["until"].add_metric([t.target], t.quarantined_until)
            restarts.add_metric([t.target], t.restarts)
        by_priority = GaugeMetricFamily(
            "novacron_open_incidents_by_priority", "Unresolved incidents by priority.", labels=["priority"]
        )
        for prio in PRIORITIES:
            by_priority.add_metric([prio], fleet.open_by_priority.get(prio, 0))
        needs_human = GaugeMetricFamily(
            "novacron_incidents_needs_human", "Escalated incidents waiting for a human.", value=fleet.needs_human
        )
        yield from (*families.values(), restarts, by_priority, needs_human)


class Metrics:
    """The controller's Prometheus metrics; pass a fresh registry per controller or test."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.faults = Counter("novacron_faults_total", "Faults detected, by kind.", ["kind"], registry=r)
        self.detection_latency = Histogram(
            "novacron_detection_latency_seconds",
            "From the fault's first evidence to its record.",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.actions = Counter("novacron_actions_total", "Actions by kind and result.", ["kind", "result"], registry=r)
        self.healing_success = Gauge(
            "novacron_healing_success_ratio", "Share of closed incidents healed automatically.", registry=r
        )
        self.closed = Counter(
            "novacron_incidents_closed_total",
            "Resolved incidents; healed=true when automation closed them.",
            ["healed"],
            registry=r,
        )
        for healed in ("true", "false"):  # present from the start, so increase() sees the first close
            self.closed.labels(healed=healed)
        self.open_incidents = Gauge("novacron_open_incidents", "Incidents not yet resolved.", registry=r)
        self.mttr = Histogram(
            "novacron_mttr_seconds",
            "From a fault's start to verified recovery.",
            buckets=_MTTR_BUCKETS,
            registry=r,
        )
        self.autonomous = Gauge("novacron_autonomous_enabled", "1 when automated healing is on.", registry=r)
        self.autonomous.set(1)
        Gauge("novacron_build_info", "Always 1; the version in a label.", ["version"], registry=r).labels(
            version=_version()
        ).set(1)
        self._fleet: FleetCollector | None = None
        self._healed = 0
        self._closed = 0

    def watch_fleet(self, snapshot: Callable[[], FleetSample]) -> None:
        """Serve per-target and per-priority series from ``snapshot`` (called at each scrape)."""
        if self._fleet is None:
            self._fleet = FleetCollector(snapshot)
            self.registry.register(self._fleet)
        else:
            self._fleet.snapshot = snapshot

    def fault(self, kind: str, latency_s: float) -> None:
        """Count a fault and its detection latency."""
        self.faults.labels(kind=kind).inc()
        self.detection_latency.observe(max(0.0, latency_s))

    def action(self, kind: str, result: str) -> None:
        """Count an action outcome."""
        self.actions.labels(kind=kind, result=result).inc()

    def incident_closed(self, *, healed: bool, mttr_s: float | None) -> None:
        """Update the success ratio (and MTTR when recovered)."""
        self._closed += 1
        self._healed += int(healed)
        self.closed.labels(healed="true" if healed else "false").inc()
        self.healing_success.set(self._healed / self._closed)
        if mttr_s is not None:
            self.mttr.observe(mttr_s)


def _version() -> str:
    # From the installed metadata: the package root imports every layer, so it is not imported here.
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415 - once per registry

    try:
        return version("novacron")
    except PackageNotFoundError:
        return "unknown"


class _Stderr(io.TextIOBase):
    """``sys.stderr`` as it is when a line is written, not as it was when logging was set up.

    A command run inside another program (a test runner's CLI invoker) gets a stderr of
    its own that is closed when the command returns; loggers bound to that object would
    fail on every later line.
    """

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()

    def isatty(self) -> bool:
        return sys.stderr.isatty()


def configure_logging(
    *, stream: TextIO | None = None, level: int = logging.INFO, fmt: Literal["json", "console"] = "json"
) -> None:
    """Log lines to ``stream`` (stderr by default): JSON with ISO timestamps, or a console renderer."""
    out = stream or cast(TextIO, _Stderr())
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if fmt == "console":  # the console renderer formats exceptions itself
        processors.append(structlog.dev.ConsoleRenderer(colors=out.isatty(), pad_event_to=24))
    else:
        processors += [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.WriteLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )


def get_logger(**bound: Any) -> Any:
    """A structlog logger with ``bound`` context (e.g. ``incident=…``)."""
    return structlog.get_logger("novacron").bind(**bound)
