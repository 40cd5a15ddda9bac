"""The store as a controller health condition: logged, exported as metrics, shown by the API.

:class:`~novacron.store.guard.GuardedStore` keeps healing going while the store fails;
this module makes the failure loud. The first failed write is logged at error (with
how many writes wait), the recovery at info with how long the store was out; the
condition is exported as ``novacron_store_degraded``, ``novacron_store_pending_writes``
and ``novacron_store_write_failures_total``, and ``/health`` and ``/status`` carry it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from novacron.store.guard import GuardedStore, StoreCondition
from novacron.telemetry import Metrics, get_logger

__all__ = ["StoreWatch"]


class StoreWatch(Collector):
    """Logs the store's condition changes and serves them as Prometheus series."""

    def __init__(self, store: GuardedStore, metrics: Metrics) -> None:
        self._store = store
        self._log = get_logger(component="store")
        self._last = store.condition
        metrics.registry.register(self)
        store.on_change = self._changed

    def _changed(self, now: StoreCondition) -> None:
        """Called by the writer thread on every change of condition."""
        before, self._last = self._last, now
        if now.degraded and not before.degraded:
            self._log.error(
                "store write failed; healing goes on from memory, writes are kept and retried",
                error=now.last_error,
                pending_writes=now.pending,
            )
        elif before.degraded and not now.degraded:
            out_s = None if before.since is None else round(time.time() - before.since, 1)
            self._log.info("store recovered; queued writes landed", outage_s=out_s, failures=now.failures)
        elif now.dropped > before.dropped or (now.last_error != before.last_error and not now.degraded):
            self._log.error("store refused a write", error=now.last_error)

    def collect(self) -> Iterator[Metric]:
        """Prometheus' collector protocol."""
        c = self._store.condition
        yield GaugeMetricFamily(
            "novacron_store_degraded", "1 while store writes fail and wait in memory.", value=float(c.degraded)
        )
        yield GaugeMetricFamily(
            "novacron_store_pending_writes", "Store writes queued, not yet in the store.", value=c.pending
        )
        yield CounterMetricFamily(
            "novacron_store_write_failures", "Failed store write attempts (each is retried).", value=c.failures
        )
