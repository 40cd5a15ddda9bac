"""The controller's heap: frozen out of the cyclic collector, and the collector's pauses measured."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Iterator

import pytest

from novacron.runtime.heap import Heap
from novacron.telemetry import Metrics


class _Node:
    """An object in a reference cycle (only the cyclic collector frees it)."""

    def __init__(self) -> None:
        self.me = self


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


@pytest.fixture
def heap(metrics: Metrics) -> Iterator[Heap]:
    h = Heap(metrics, settle_after_s=0.01)
    yield h
    h.close()
    gc.unfreeze()  # the rest of the test run keeps its collector as it was


def _full_collections(metrics: Metrics) -> float:
    value = metrics.registry.get_sample_value("novacron_gc_pause_seconds_count", {"generation": "2"})
    return value or 0.0


def test_settle_takes_live_objects_out_of_the_collector(heap: Heap) -> None:
    alive = _Node()
    heap.settle()
    assert heap.settled == 1
    assert gc.get_freeze_count() > 0
    assert not any(o is alive for o in gc.get_objects())  # a full collection no longer walks it


def test_settle_frees_young_garbage_before_freezing(heap: Heap) -> None:
    gc.collect()
    dead = _Node()
    ref = weakref.ref(dead)
    del dead
    heap.settle()
    assert ref() is None


def test_watch_times_each_collection_by_generation(heap: Heap, metrics: Metrics) -> None:
    heap.watch()
    heap.watch()  # once only
    before = _full_collections(metrics)
    gc.collect()
    assert _full_collections(metrics) == before + 1
    heap.close()
    gc.collect()
    assert _full_collections(metrics) == before + 1  # no longer watching


def test_settle_soon_settles_once_after_a_burst() -> None:
    async def burst() -> int:
        h = Heap(Metrics(), settle_after_s=0.01)
        try:
            for _ in range(5):
                h.settle_soon()
            await asyncio.sleep(0.05)  # the settle's timer is due first: ordering, not speed
            return h.settled
        finally:
            h.close()
            gc.unfreeze()

    assert asyncio.run(burst()) == 1
