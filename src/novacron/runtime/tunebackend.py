"""Where candidate evaluations run: this process, a local process pool, or a Dask cluster.

Every backend maps one picklable function over argument tuples and returns, per item,
either the result or the error text of a failed evaluation — a failure is recorded as a
failure, never as a score. The process pool is the default; ``--dask ADDRESS`` connects to
a running ``dask-scheduler`` (its workers need novacron installed), and
:func:`local_dask` starts a LocalCluster for benchmarks. Dask comes from the ``tune``
extra; an unreachable scheduler is an error naming its address.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from novacron.errors import InputError
from novacron.extras import require

__all__ = ["Backend", "DaskBackend", "Failed", "PoolBackend", "SerialBackend", "local_dask", "make_backend"]


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


class SerialBackend:
    """Evaluations one after another in this process."""

    workers = 1

    def map(self, fn: Callable[..., Any], items: Sequence[tuple[Any, ...]]) -> list[Any]:
        """Run each item here."""
        out: list[Any] = []
        for item in items:
            try:
                out.append(fn(*item))
            except Exception as exc:  # a broken evaluation is recorded, not raised
                out.append(Failed(_describe(exc)))
        return out

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
        """Run items across the pool."""
        futures = [self._pool.submit(fn, *item) for item in items]
        return [_result(f) for f in futures]

    def close(self) -> None:
        """Stop the worker processes."""
        self._pool.shutdown(wait=True, cancel_futures=True)


def _result(future: cf.Future[Any]) -> Any:
    try:
        return future.result()
    except Exception as exc:  # a broken evaluation is recorded, not raised
        return Failed(_describe(exc))


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

    def map(self, fn: Callable[..., Any], items: Sequence[tuple[Any, ...]]) -> list[Any]:
        """Submit every item to the cluster and gather in order."""
        futures = [self._client.submit(fn, *item, pure=False) for item in items]
        out = []
        for fut in futures:
            try:
                out.append(fut.result())
            except Exception as exc:  # a broken evaluation is recorded, not raised
                out.append(Failed(_describe(exc)))
        return out

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
