"""Metric sensing: each replica's own ``/metrics`` (Prometheus text) and its process readings.

Every ``interval_s`` a replica yields one :class:`~novacron.model.Observation` whose
``metrics`` hold the scraped samples (summed over label sets), per-interval rates derived
from counters (``error_ratio`` from ``http_errors_total`` / ``http_requests_total``, and
``<histogram>_mean_s`` from ``_sum`` / ``_count`` deltas), and psutil readings:
``cpu_percent``, ``rss_bytes``, ``open_files``, ``threads``, ``connections``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import psutil
from prometheus_client.parser import text_string_to_metric_families

from novacron.clock import Clock
from novacron.model import Observation, TargetId

if TYPE_CHECKING:
    import httpx

__all__ = ["MetricsScraper", "derive_rates", "parse_prometheus_text", "process_readings"]

Emit = Callable[[Observation], None]
PidOf = Callable[[], int | None]


def parse_prometheus_text(text: str) -> dict[str, float]:
    """Samples by name, summed over label sets; raises ValueError on malformed text."""
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.endswith("_bucket") or sample.name.endswith("_created"):
                continue
            out[sample.name] = out.get(sample.name, 0.0) + float(sample.value)
    return out


def derive_rates(now: Mapping[str, float], before: Mapping[str, float]) -> dict[str, float]:
    """Per-interval figures from two scrapes of cumulative counters."""
    out: dict[str, float] = {}
    requests = now.get("http_requests_total", 0.0) - before.get("http_requests_total", 0.0)
    if "http_errors_total" in now and requests > 0:
        out["error_ratio"] = max(0.0, now["http_errors_total"] - before.get("http_errors_total", 0.0)) / requests
    for name, total in now.items():
        if name.endswith("_sum") and (count_name := name[:-4] + "_count") in now:
            count = now[count_name] - before.get(count_name, 0.0)
            if count > 0:
                out[name[:-4] + "_mean_s"] = (total - before.get(name, 0.0)) / count
    return out


def process_readings(proc: psutil.Process) -> dict[str, float]:
    """CPU (percent since the previous call), memory, files, threads, connections."""
    with proc.oneshot():
        readings = {
            "cpu_percent": proc.cpu_percent(None),
            "rss_bytes": float(proc.memory_info().rss),
            "open_files": float(proc.num_fds()),
            "threads": float(proc.num_threads()),
        }
    with contextlib.suppress(psutil.Error):
        readings["connections"] = float(len(proc.net_connections(kind="inet")))
    return readings


@dataclass
class _Scrape:
    target: TargetId
    replica: int
    url: str | None
    pid_of: PidOf
    use_process: bool
    last: dict[str, float] = field(default_factory=dict)
    proc: psutil.Process | None = None
    task: asyncio.Task[None] | None = None


class MetricsScraper:
    """Scrapes every registered replica on its interval and emits metric observations."""

    def __init__(self, clock: Clock, emit: Emit) -> None:
        self._clock = clock
        self._emit = emit
        self._scrapes: dict[tuple[str, int], _Scrape] = {}
        self._http: httpx.AsyncClient | None = None  # made on the first /metrics scrape (httpx is not light)

    def add(
        self, target: TargetId, replica: int, *, url: str | None, pid_of: PidOf, process: bool, interval_s: float
    ) -> None:
        """Start scraping one replica."""
        scrape = _Scrape(target, replica, url, pid_of, process)
        scrape.task = asyncio.get_running_loop().create_task(self._run(scrape, interval_s), name=f"metrics:{target}")
        self._scrapes[(target, replica)] = scrape

    async def close(self) -> None:
        """Stop every scrape loop and the HTTP client."""
        tasks = [s.task for s in self._scrapes.values() if s.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._scrapes.clear()
        if self._http is not None:
            await self._http.aclose()

    async def _run(self, scrape: _Scrape, interval_s: float) -> None:
        while True:
            await self._clock.sleep(interval_s)
            metrics = await self._sample(scrape)
            # Emitted even when empty: the tick is what closes a probe-latency interval.
            self._emit(
                Observation(scrape.target, "metrics", self._clock.now(), None, metrics=metrics, replica=scrape.replica)
            )

    async def _sample(self, scrape: _Scrape) -> dict[str, float]:
        metrics: dict[str, float] = {}
        if scrape.url is not None:
            current = await self._scrape_text(scrape.url)
            if current is not None:
                metrics.update(current)
                if scrape.last:
                    metrics.update(derive_rates(current, scrape.last))
                scrape.last = current
        if scrape.use_process:
            metrics.update(await asyncio.to_thread(self._process, scrape))
        return metrics

    async def _scrape_text(self, url: str) -> dict[str, float] | None:
        import httpx  # noqa: PLC0415 - only targets with a metrics url pay for it

        if self._http is None:
            self._http = httpx.AsyncClient(timeout=1.0)
        try:
            resp = await self._http.get(url)
            resp.raise_for_status()
            return parse_prometheus_text(resp.text)
        except (httpx.HTTPError, ValueError):
            return None  # an unreachable or broken endpoint is the probes' business

    @staticmethod
    def _process(scrape: _Scrape) -> dict[str, float]:
        pid = scrape.pid_of()
        if pid is None:
            scrape.proc = None
            return {}
        try:
            if scrape.proc is None or scrape.proc.pid != pid:
                scrape.proc = psutil.Process(pid)
                scrape.proc.cpu_percent(None)  # the first reading only starts the interval
            return process_readings(scrape.proc)
        except psutil.Error:
            scrape.proc = None
            return {}
