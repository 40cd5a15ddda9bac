"""Prometheus series for traffic: per load-balancer server, and per experiment arm.

Read at each scrape from the HAProxy actuator's request-log counters and the experiment
runner's live tallies, so nothing is counted twice and nothing runs between scrapes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = ["TrafficCollector"]


class TrafficCollector(Collector):
    """``novacron_lb_*`` per server and ``novacron_experiment_*`` per arm."""

    def __init__(
        self,
        served: Callable[[], Mapping[tuple[str, str], list[float]]],
        experiments: Callable[[], list[dict[str, Any]]],
    ) -> None:
        self.served, self.experiments = served, experiments

    def collect(self) -> Iterator[Metric]:
        """Prometheus' collector protocol."""
        labels = ["target", "server"]
        reqs = CounterMetricFamily("novacron_lb_requests", "Requests served through the frontend.", labels=labels)
        errs = CounterMetricFamily("novacron_lb_responses_5xx", "5xx answers passed to clients.", labels=labels)
        secs = CounterMetricFamily("novacron_lb_response_seconds", "Summed total time of the requests.", labels=labels)
        for (target, server), (n, e, t) in sorted(self.served().items()):
            reqs.add_metric([target, server], n)
            errs.add_metric([target, server], e)
            secs.add_metric([target, server], t)
        yield from (reqs, errs, secs)
        yield from self._arms()

    def _arms(self) -> Iterator[Metric]:
        labels = ["experiment", "arm"]
        reqs = GaugeMetricFamily("novacron_experiment_requests", "Requests an arm served.", labels=labels)
        errs = GaugeMetricFamily("novacron_experiment_errors", "5xx answers of an arm.", labels=labels)
        slow = GaugeMetricFamily(
            "novacron_experiment_slow", "Requests of an arm over the baseline's p95.", labels=labels
        )
        split = GaugeMetricFamily(
            "novacron_experiment_split", "The variant's share of traffic, percent.", labels=["experiment"]
        )
        for exp in self.experiments():
            split.add_metric([exp["name"]], float(exp["split"]))
            for arm, w in exp["arms"].items():
                reqs.add_metric([exp["name"], arm], w["requests"])
                errs.add_metric([exp["name"], arm], w["errors"])
                slow.add_metric([exp["name"], arm], w["slow"])
        yield from (reqs, errs, slow, split)
