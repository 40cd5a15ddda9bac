"""Engine creation and schema migration (Alembic) for SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from novacron.errors import ConfigError, StoreError, StoreUnreachableError

__all__ = ["PG_CONNECT_ARGS", "check_url", "make_engine", "migrate", "missing_database", "pg_connect_args"]

# A controller cut off from PostgreSQL (a pulled link, a paused peer) must notice within
# seconds rather than after the kernel's 15-minute retransmission timeout: keepalives
# every second after 2 s idle, and unacknowledged data gives up after 5 s.
PG_CONNECT_ARGS: dict[str, int] = {
    "connect_timeout": 5,
    "keepalives": 1,
    "keepalives_idle": 2,
    "keepalives_interval": 1,
    "keepalives_count": 3,
    "tcp_user_timeout": 5000,
}

# The store's own transactions take milliseconds. A controller paused (SIGSTOP, a frozen
# VM) or cut off inside one keeps its row locks — a target's status row, an incident —
# and every other controller writing that row waits behind it, its write queue with it:
# a peer's failover would wait for the paused node to wake up. The server ends such a
# session after this long; the write is retried on a fresh connection when it is live.
_IDLE_IN_TRANSACTION_S = 2.0


def pg_connect_args(idle_in_transaction_s: float) -> dict[str, int | str]:
    """:data:`PG_CONNECT_ARGS`, and the server ends a session idle inside a transaction this long."""
    return {**PG_CONNECT_ARGS, "options": f"-c idle_in_transaction_session_timeout={int(idle_in_transaction_s * 1000)}"}


_PG_STORE_ARGS = pg_connect_args(_IDLE_IN_TRANSACTION_S)

_MIGRATIONS = Path(__file__).with_name("migrations")
_MIGRATION_LOCK = 0x6E6F7661  # the transaction-scoped advisory lock that serialises migrations


def _sqlite_pragmas(dbapi_conn: object, _record: object) -> None:
    cur = dbapi_conn.cursor()  # type: ignore[attr-defined]
    # WAL lets readers (CLI, API) run beside the controller; NORMAL sync is durable
    # across process crashes, which is the failure we must survive.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=5000")
    cur.close()


def _parse(url: str) -> URL:
    """``url`` parsed; a bare ``postgresql://`` means psycopg (3), the driver the store ships with."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError(f"not a database URL: {url!r}", where="store_url") from exc
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        return parsed.set(drivername="postgresql+psycopg")
    return parsed


def check_url(url: str) -> None:
    """Refuse a URL :func:`make_engine` would refuse (its form, its database's driver), touching nothing."""
    parsed = _parse(url)
    if parsed.get_backend_name() == "sqlite":
        return
    try:
        parsed.get_dialect().import_dbapi()
    except (ArgumentError, ImportError) as exc:
        raise ConfigError(f"cannot use database URL {url!r}: {exc}", where="store_url") from exc


def make_engine(url: str) -> Engine:
    """Create an engine for ``url`` (``sqlite:///path`` or ``postgresql+psycopg://…``)."""
    parsed = _parse(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            _private_file(Path(parsed.database).expanduser())
            engine = create_engine(parsed, connect_args={"check_same_thread": False})
        else:  # one shared connection, or every connection would see its own empty database
            engine = create_engine(parsed, connect_args={"check_same_thread": False}, poolclass=StaticPool)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    try:
        return create_engine(parsed, pool_pre_ping=True, connect_args=dict(_PG_STORE_ARGS))
    except (ArgumentError, ImportError) as exc:
        raise ConfigError(f"cannot use database URL {url!r}: {exc}", where="store_url") from exc


def _private_file(path: Path) -> None:
    """Create the database file owner-only (0600, its new folders 0700) before SQLite does.

    The store holds every spec version, environment values included. SQLite gives its WAL
    and shared-memory files the database file's permissions, so they follow.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def missing_database(url: str) -> str | None:
    """The path of a SQLite database file that does not exist yet, else None.

    Read-only commands (``novacron status``) use it to refuse rather than create a store
    in whatever folder they were run from. Server databases cannot be checked without
    connecting, so they count as present.
    """
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError(f"not a database URL: {url!r}", where="store_url") from exc
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    path = Path(parsed.database).expanduser()
    return None if path.is_file() else str(path)


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision.

    A store already at the newest revision (every start but the first) is recognised
    without importing Alembic, which would cost a supervisor ~10 MB and a few hundred
    milliseconds on every start.
    """
    if _at_head(engine):
        return
    with _sqlite_migration_lock(engine):
        if not _at_head(engine):  # another process may have migrated while this one waited
            _upgrade(engine)


@contextlib.contextmanager
def _sqlite_migration_lock(engine: Engine) -> Iterator[None]:
    """Serialise migrations of one SQLite file across processes (PostgreSQL locks in the transaction).

    Two commands opening a new store at once (a controller and ``novacron tune``, or two tune
    workers) would otherwise both create the first tables and one would fail. The lock is a
    ``flock`` on the database's folder, never on the database file: closing any descriptor of
    that file would drop the POSIX locks SQLite's own connections hold on it.
    """
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:":
        yield
        return
    fd = os.open(Path(database).expanduser().resolve().parent, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _upgrade(engine: Engine) -> None:
    from alembic import command  # noqa: PLC0415 - only when there is something to migrate
    from alembic.config import Config  # noqa: PLC0415

    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    from alembic.util import CommandError  # noqa: PLC0415

    try:
        with engine.begin() as conn:
            if engine.dialect.name == "postgresql":
                # Several controllers starting at once on a new database: one migrates, the
                # others wait for its transaction and then find the schema at head.
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
                # Alembic loads its scripts between statements of this one transaction, and a
                # data migration may work on rows in Python: the store's 2 s limit on an idle
                # transaction is for controllers' writes, not for the schema's upgrade.
                conn.execute(text("SET LOCAL idle_in_transaction_session_timeout = 0"))
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
    except CommandError as exc:  # e.g. a revision this version does not know: a newer schema
        raise StoreError(f"the store's schema is not one this novacron can use ({exc}); upgrade novacron") from exc
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot migrate the store: {str(exc).splitlines()[0]}", delay=1.0) from exc


_REVISION = re.compile(r"^revision\s*=\s*[\"']([^\"']+)[\"']", re.MULTILINE)
_DOWN = re.compile(r"^down_revision\s*=\s*(.+)$", re.MULTILINE)


@cache
def _heads() -> frozenset[str]:
    """The newest revision(s): those no other migration names as its ``down_revision``."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (_MIGRATIONS / "versions").glob("*.py"):
        body = path.read_text(encoding="utf-8")
        if (rev := _REVISION.search(body)) is not None:
            revisions.add(rev.group(1))
        if (down := _DOWN.search(body)) is not None:
            parents.update(re.findall(r"[\"']([^\"']+)[\"']", down.group(1)))
    return frozenset(revisions - parents)


def _at_head(engine: Engine) -> bool:
    try:
        conn = engine.connect()
    except SQLAlchemyError as exc:
        where, why = engine.url.render_as_string(hide_password=True), str(exc).splitlines()[0]
        raise StoreUnreachableError(f"cannot reach the store at {where}: {why}", delay=1.0) from exc
    try:
        with conn:
            current = {str(v) for v in conn.execute(text("SELECT version_num FROM alembic_version")).scalars()}
    except SQLAlchemyError:
        return False  # no version table yet: a new store
    return bool(current) and current == _heads()
