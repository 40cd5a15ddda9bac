"""A store whose writes are slow (its write lock held elsewhere) never stalls the controller's loop.

Another connection holds SQLite's write lock while a process is killed: every write the
controller makes waits for the lock (seconds, far below the busy timeout, so slow, not
failed). The fault is still detected and healed meanwhile, and the loop is never blocked
for anything like the time a write takes: its reads wait for the queued writes off the
loop, and the spawn journal's intent is awaited, not waited for on the loop.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from prometheus_client import CollectorRegistry

from novacron.model import ActionStatus, IncidentStatus
from novacron.runtime.controller import Controller
from novacron.runtime.looplag import LoopLag
from novacron.store.guard import GuardedStore
from novacron.telemetry import Metrics
from novacron.testing import fleet, http_service_target

from .conftest import eventually, healthy, kill

_HOLD_S = 4.0  # each write waits up to this long (the store's busy timeout is 5 s: slow, never failed)
_LAG_BOUND_S = 1.0  # far below a held write; a loop waiting for one would be late by seconds


@contextmanager
def write_lock_held(db: Path, seconds: float) -> Iterator[threading.Event]:
    """Hold the database's write lock from another connection for ``seconds``; the event says it is held."""
    held = threading.Event()
    done = threading.Event()

    def hold() -> None:
        conn = sqlite3.connect(db, timeout=10.0)
        try:
            conn.execute("BEGIN IMMEDIATE")
            held.set()
            done.wait(seconds)
            conn.rollback()
        finally:
            conn.close()

    thread = threading.Thread(target=hold, name="write-lock", daemon=True)
    thread.start()
    try:
        yield held
    finally:
        done.set()
        thread.join(timeout=15.0)


def _late_ticks(metrics: Metrics, above: float) -> float:
    """How many loop-lag ticks were later than ``above`` seconds (a bucket bound)."""
    total = metrics.registry.get_sample_value("novacron_loop_lag_seconds_count") or 0.0
    within = metrics.registry.get_sample_value("novacron_loop_lag_seconds_bucket", {"le": str(above)}) or 0.0
    return total - within


async def test_a_crash_heals_while_every_store_write_waits_and_the_loop_never_does(tmp_path: Path, ports: int) -> None:
    db = tmp_path / "n.db"
    metrics = Metrics(CollectorRegistry())
    c = Controller(fleet(http_service_target("api", ports)), workdir=tmp_path, store_url=f"sqlite:///{db}", seed=1)
    lag = LoopLag(metrics)
    await c.start()
    guarded = c.store
    assert isinstance(guarded, GuardedStore)
    lag.start()
    try:
        await healthy(c)
        assert guarded.flush(10.0)
        with write_lock_held(db, _HOLD_S) as held:
            assert await asyncio.to_thread(held.wait, 10.0)
            old = kill(c, "api")
            await eventually(lambda: c.incidents.open_for("api") is not None, what="the crash detected")
            await eventually(lambda: guarded.condition.pending > 0, what="its writes queued behind the lock")
            await eventually(
                lambda: bool(c.actuator.pids("api")) and c.actuator.pids("api")[0] != old,
                timeout=30.0,
                what="the replica restarted",
            )
            await eventually(lambda: c.incidents.open_for("api") is None, timeout=30.0, what="the incident resolved")
        assert await asyncio.to_thread(guarded.flush, 15.0)
        assert _late_ticks(metrics, _LAG_BOUND_S) == 0.0
        assert not guarded.condition.degraded
        incidents = c.store.incidents()
        assert [i.status for i in incidents] == [IncidentStatus.RESOLVED]
        assert [a.status for a in c.store.actions(incident_id=incidents[0].id)] == [ActionStatus.VERIFIED]
    finally:
        await lag.stop()
        await c.stop()
