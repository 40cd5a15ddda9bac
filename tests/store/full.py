"""A full SQLite store without a full disk, for the tests of store faults."""

from __future__ import annotations

from sqlalchemy import event

from novacron.store import Store


def cap_pages(store: Store, pages: int | None) -> None:
    """Cap (or uncap) the SQLite file at ``pages`` pages: a full disk, without a disk."""

    def pragma(dbapi_conn: object, _record: object) -> None:
        cur = dbapi_conn.cursor()  # type: ignore[attr-defined]
        cur.execute(f"PRAGMA max_page_count={pages or 1073741823}")
        cur.close()

    event.listen(store.engine, "connect", pragma)
    store.engine.dispose()  # new connections take the cap
