"""The write-behind store inline (simulated time): the same ordered, retried writes, on the caller's thread."""

from __future__ import annotations

import threading
from pathlib import Path

from novacron.healing.catalog import new_action
from novacron.model import ActionKind, ActionStatus, TargetId
from novacron.store import Store
from novacron.store.guard import GuardedStore

from .full import cap_pages


def _pages(store: Store) -> int:
    with store.engine.connect() as conn:
        return int(conn.exec_driver_sql("PRAGMA page_count").scalar_one())


def test_inline_writes_land_at_once_without_a_writer_thread(tmp_path: Path) -> None:
    before = {t.name for t in threading.enumerate()}
    store = GuardedStore.open(f"sqlite:///{tmp_path / 'g.db'}", inline=True)
    try:
        store.audit(now=1.0, actor="t", verb="v", subject="s0", result="ok")
        assert store.condition.pending == 0
        with store.engine.connect() as conn:  # straight from the database: no read-your-writes help
            assert conn.exec_driver_sql("SELECT count(*) FROM audit").scalar_one() == 1
        action = new_action(ActionKind.RESTART, TargetId("api"), key="k1")
        assert store.claim_action(action, ActionStatus.PLANNED, now=2.0) is None
        assert Store.action_by_key(store, "k1") is not None, "the claim is in the store when claim_action returns"
        assert store.call(lambda conn: conn.exec_driver_sql("SELECT 7").scalar_one()).result(timeout=0) == 7
        assert {t.name for t in threading.enumerate()} - before == set(), "no store-writer thread"
    finally:
        store.close()


def test_an_inline_write_the_store_refuses_stays_first_and_lands_in_order(tmp_path: Path) -> None:
    store = GuardedStore.open(f"sqlite:///{tmp_path / 'g.db'}", inline=True)
    try:
        store.audit(now=0.0, actor="t", verb="v", subject="warm", result="ok")
        cap_pages(store, _pages(store))
        for i in range(20):
            store.audit(now=float(i), actor="t", verb="v", subject=f"s{i}", result="ok", blob="x" * 4000)
        c = store.condition
        assert c.degraded
        assert c.pending > 0
        assert "full" in (c.last_error or "")
        cap_pages(store, None)
        assert store.flush(0.0), "the next flush lands what waited"
        assert not store.condition.degraded
        subjects = [e.subject for e in reversed(store.audit_log(limit=100))]
        assert subjects == ["warm", *(f"s{i}" for i in range(20))]
    finally:
        store.close()
