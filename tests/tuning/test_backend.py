"""Backends evaluate in chunks, and a broken evaluation fails only itself."""

from __future__ import annotations

import pytest

from novacron.runtime.tunebackend import CHUNKS_PER_WORKER, Failed, PoolBackend, SerialBackend, chunked


def square_or_break(x: int) -> int:
    """A toy evaluation: 13 is broken."""
    if x == 13:
        raise ValueError("unlucky")
    return x * x


def test_chunks_keep_order_and_cover_every_item() -> None:
    items = [(i,) for i in range(37)]
    chunks = chunked(items, 2)
    assert [i for c in chunks for i in c] == items
    assert len(chunks) <= 2 * CHUNKS_PER_WORKER
    assert chunked([], 2) == []
    assert chunked(items[:3], 4) == [[(0,)], [(1,)], [(2,)]]


@pytest.mark.parametrize("workers", [1, 2])
def test_a_broken_item_fails_alone_in_its_chunk(workers: int) -> None:
    backend = PoolBackend(workers) if workers > 1 else SerialBackend()
    try:
        out = backend.map(square_or_break, [(i,) for i in range(20)])
    finally:
        backend.close()
    assert [o for i, o in enumerate(out) if i != 13] == [i * i for i in range(20) if i != 13]
    assert isinstance(out[13], Failed)
    assert "ValueError: unlucky" in out[13].error
