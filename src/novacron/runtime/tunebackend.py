"""Where candidate evaluations run: this process, a local process pool, or a Dask cluster.

Every backend maps one picklable function over argument tuples and returns, per item,
either the result or the error text of a failed evaluation — a failure is recorded as a
failure, never as a score. The process pool is the default; ``--dask ADDRESS`` connects to
a running ``dask-scheduler`` (its workers need novacron installed), and
:func:`local_dask` starts a LocalCluster for benchmarks. Dask comes from the ``tune``
extra; an unreachable scheduler is an error naming its address.

The pool and Dask backends send candidates in chunks (a few per worker, each chunk one
task) rather than one task per candidate: a twin run lasts tens of milliseconds, and a
Dask task's round trip through the scheduler costs a few milliseconds of the same two
cores, so per-candidate tasks would spend a noticeable share of the machine on
bookkeeping. Dask workers import the evaluated function's module once, before the first
chunk, so the first tasks do not pay for the imports.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import importlib
import math
import multiprocessing
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from novacron.errors import InputError
from novacron.extras import require

__all__ = [
    "CHUNKS_PER_WORKER",
    "Backend",
    "DaskBackend",
    "Failed",
    "PoolBackend",
    "SerialBackend",
    "chunked",
    "local_dask",
    "make_backend",
]

# Chunks per worker: enough that a slow chunk cannot leave a worker idle for long, few
# enough that the per-task overhead stays small against the twin runs inside each.
CHUNKS_PER_WORKER = 4


class Failed:
    """An evaluation that raised: the text of its error."""

    __slots__ = ("error",)

    def __init__(self, error: str) -> None:
        self.error = error

    def __repr__(self) -> str:
        return f"Failed({self.error!r})"


class Backend(Protocol):
    """Maps a function over argument tuples, in parallel where it can."""

    @property
    def workers(self) -> int:
        """How many evaluations run at once."""
        ...

    def map(self, fn: Callable[..., Any], items: Sequence[tuple[Any, ...]]) -> list[Any]:
        """``fn(*item)`` for every item, in order; a raised error becomes :class:`Failed`."""
        ...

    def close(self) -> None:
        """Release workers and connections."""
        ...


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _run_chunk(fn: Callable[..., Any], items: Sequence[tuple[Any, ...]]) -> list[Any]:
    """``fn(*item)`` for each item, one after another; a raised error becomes :class:`Failed` for that item only."""
    out: list[Any] = []
    for item in items:
        try:
            out.append(fn(*item))
        except Exception as exc:  # a broken evaluation is recorded, not raised
            out.append(Failed(_describe(exc)))
    return out


def chunked(items: Sequence[tuple[Any, ...]], workers: int) -> list[list[tuple[Any, ...]]]:
    """Consecutive chunks of ``items``, about :data:`CHUNKS_PER_WORKER` per worker."""
    if not items:
        return []
    size = max(1, math.ceil(len(items) / (max(1, workers) * CHUNKS_PER_WORKER)))
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def _import(module: str) -> None:
    importlib.import_module(module)


class SerialBackend:
    """Evaluations one after another in this process."""

    workers = 1

    def map(self, fn: Callable[..., Any], items: Sequence[tuple[Any, ...]]) -> list[Any]:
        """Run each item here."""
        return _run_chunk(fn, items)

    def close(self) -> None:
        """Nothing to release."""


class PoolBackend:
    """A local pool of worker processes (forkserver: workers start clean, without our threads)."""

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise InputError(f"must be >= 1, got {workers}", where="--workers")
        self.workers = workers
        self._pool = cf.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("forkserver"))

    def map(self, fn: Callable[..., Any], items: Sequence[tuple[Any, ...]]) -> list[Any]:
        """Run items across the pool, a few chunks per worker."""
        chunks = chunked(items, self.workers)
        futures = [self._pool.submit(_run_chunk, fn, chunk) for chunk in chunks]
        return [r for f, chunk in zip(futures, chunks, strict=True) for r in _chunk_result(f, len(chunk))]

    def close(self) -> None:
        """Stop the worker processes."""
        self._pool.shutdown(wait=True, cancel_futures=True)


def _chunk_result(future: Any, size: int) -> list[Any]:
    """A chunk's results; when the chunk itself broke (its worker died), every item in it failed."""
    try:
        result: list[Any] = future.result()
    except Exception as exc:  # a broken evaluation is recorded, not raised
        return [Failed(_describe(exc))] * size
    return result


class DaskBackend:
    """Evaluations on a Dask distributed cluster."""

    def __init__(self, address: str, *, timeout_s: float = 5.0) -> None:
        distributed = require("distributed", feature="Dask evaluation")
        try:
            self._client = distributed.Client(address, timeout=timeout_s, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise InputError(f"cannot reach the Dask scheduler at {address}: {exc}", where="--dask") from exc
        self.address = address
        self.workers = max(1, sum(w.get("nthreads", 1) for w in self._client.scheduler_info()["workers"].values()))
        self._warm: set[str] = set()

    def map(self, fn: Callable[..., Any], items: Sequence[tuple[Any, ...]]) -> list[Any]:
        """Submit the items in chunks to the cluster and gather in order."""
        self.warm(fn.__module__)
        chunks = chunked(items, self.workers)
        futures = [self._client.submit(_run_chunk, fn, chunk, pure=False) for chunk in chunks]
        return [r for f, chunk in zip(futures, chunks, strict=True) for r in _chunk_result(f, len(chunk))]

    def warm(self, module: str) -> None:
        """Have every worker import ``module`` now (once per backend), not inside the first timed tasks."""
        if module in self._warm:
            return
        self._warm.add(module)
        # A worker that cannot import it fails its tasks, and they are recorded as failed with the reason.
        with contextlib.suppress(Exception):
            self._client.run(_import, module)

    @property
    def client(self) -> Any:
        """The ``distributed.Client`` (for running a function on every worker)."""
        return self._client

    def close(self) -> None:
        """Disconnect (the cluster keeps running)."""
        self._client.close()


def local_dask(workers: int) -> tuple[Any, str]:
    """Start a LocalCluster of ``workers`` single-threaded worker processes on loopback; returns (cluster, address)."""
    distributed = require("distributed", feature="Dask evaluation")
    cluster = distributed.LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        scheduler_port=0,
        dashboard_address=None,
    )
    return cluster, str(cluster.scheduler_address)


def make_backend(*, workers: int = 1, dask: str | None = None) -> Backend:
    """The backend a command asked for: Dask when an address is given, else a pool (or serial for one worker)."""
    if dask:
        return DaskBackend(dask)
    if workers <= 1:
        return SerialBackend()
    return PoolBackend(workers)
