"""One PostgreSQL store shared: a paused session frees its rows, one row written by two, a slow migration lives."""

from __future__ import annotations

import threading
import time

import pytest
from alembic.config import Config
from sqlalchemy import delete, select
from sqlalchemy.exc import DBAPIError

from novacron.store import Store
from novacron.store import tables as t
from novacron.store.db import _IDLE_IN_TRANSACTION_S
from tests.postgres import pg_url  # noqa: F401 - a fixture


def test_a_transaction_left_idle_is_ended_and_the_row_freed(pg_url: str) -> None:  # noqa: F811
    paused, peer = Store.open(pg_url), Store.open(pg_url)
    try:
        paused.put_setting("kill_switch", False, now=1.0)
        conn = paused.engine.connect()
        conn.begin()
        conn.execute(delete(t.settings_kv).where(t.settings_kv.c.key == "kill_switch"))  # the row is locked
        wrote = threading.Event()

        def write() -> None:
            peer.put_setting("kill_switch", True, now=2.0)
            wrote.set()

        writer = threading.Thread(target=write)
        writer.start()
        # The paused client never commits nor rolls back: the peer gets through only
        # because the server ends the idle session.
        assert wrote.wait(timeout=60), "the peer's write still waits on the paused client's lock"
        writer.join()
        assert peer.get_setting("kill_switch") is True
        with pytest.raises(DBAPIError):
            conn.execute(select(1))
        conn.invalidate()
        conn.close()
    finally:
        paused.close()
        peer.close()


def test_two_stores_writing_one_row_at_once_never_collide_on_its_key(pg_url: str) -> None:  # noqa: F811
    stores = [Store.open(pg_url), Store.open(pg_url)]
    errors: list[Exception] = []

    def write(store: Store, value: int) -> None:
        for i in range(150):
            try:
                store.put_setting("kill_switch", value * 1000 + i, now=float(i))
            except Exception as exc:  # every failure is the finding
                errors.append(exc)

    try:
        threads = [threading.Thread(target=write, args=(s, n)) for n, s in enumerate(stores)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert errors == []
        assert stores[0].get_setting("kill_switch") in {149, 1149}
    finally:
        for s in stores:
            s.close()


def test_a_migration_slow_between_its_statements_is_not_ended(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    from alembic import command

    upgrade = command.upgrade

    def slow_upgrade(cfg: Config, revision: str) -> None:
        # The migration's transaction holds its lock and sits idle past the store's limit
        # (as Alembic loading its scripts on a busy machine does) before the first DDL.
        time.sleep(_IDLE_IN_TRANSACTION_S + 1.0)
        upgrade(cfg, revision)

    monkeypatch.setattr(command, "upgrade", slow_upgrade)
    store = Store.open(pg_url)
    try:
        store.put_setting("kill_switch", True, now=1.0)
        assert store.get_setting("kill_switch") is True
    finally:
        store.close()
