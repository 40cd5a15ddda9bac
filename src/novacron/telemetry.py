"""Prometheus metrics (on an injected registry) and structlog JSON logging."""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["Metrics", "configure_logging", "get_logger"]

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_MTTR_BUCKETS = (0.1, 0.25, 0.5, 1.0, 1.5, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


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
        self.open_incidents = Gauge("novacron_open_incidents", "Incidents not yet resolved.", registry=r)
        self.mttr = Histogram(
            "novacron_mttr_seconds",
            "From a fault's start to verified recovery.",
            buckets=_MTTR_BUCKETS,
            registry=r,
        )
        self.autonomous = Gauge("novacron_autonomous_enabled", "1 when automated healing is on.", registry=r)
        self.autonomous.set(1)
        self._healed = 0
        self._closed = 0

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
        self.healing_success.set(self._healed / self._closed)
        if mttr_s is not None:
            self.mttr.observe(mttr_s)


def configure_logging(*, stream: TextIO | None = None, level: int = logging.INFO) -> None:
    """JSON lines to ``stream`` (stderr by default), with ISO timestamps and log level."""
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.WriteLoggerFactory(file=stream or sys.stderr),
        cache_logger_on_first_use=False,
    )


def get_logger(**bound: Any) -> Any:
    """A structlog logger with ``bound`` context (e.g. ``incident=…``)."""
    return structlog.get_logger("novacron").bind(**bound)
