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
    gc.enable()


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


def test_settle_soon_holds_the_collector_and_settles_once_after_a_burst(heap: Heap) -> None:
    async def burst() -> tuple[bool, int, bool]:
        for _ in range(5):
            heap.settle_soon()
        held = gc.isenabled()
        await asyncio.sleep(0.05)  # the settle's timer is due first: ordering, not speed
        return held, heap.settled, gc.isenabled()

    assert asyncio.run(burst()) == (False, 1, True)


def test_a_collector_that_was_off_stays_off(heap: Heap) -> None:
    async def burst() -> bool:
        heap.settle_soon()
        await asyncio.sleep(0.05)
        return gc.isenabled()

    gc.disable()
    assert asyncio.run(burst()) is False


def test_closing_gives_the_held_collector_back(heap: Heap) -> None:
    async def held_then_closed() -> bool:
        heap.settle_soon()
        heap.close()
        return gc.isenabled()

    assert asyncio.run(held_then_closed()) is True
    assert heap.settled == 0
