"""A client paused inside a store transaction (SIGSTOP, a frozen VM) does not hold its row locks for long."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import delete, select
from sqlalchemy.exc import DBAPIError

from novacron.store import Store
from novacron.store import tables as t
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
