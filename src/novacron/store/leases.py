"""Shard leases with epochs, and fenced writes: the store side of several controllers.

Every shard has one row: its holder (node id and incarnation), an *epoch* that each new
holder raises by one, and the instant the lease expires. A holder renews before expiry;
anyone may take a shard whose lease expired (raising the epoch), so a node that died or
was paused loses its shards within one lease. The epoch is the fencing token: every
claim of an idempotency key and every action applied on a sharded target checks, in the
same transaction, that the lease is still the caller's at the epoch it holds (the check
is a conditional ``UPDATE`` of the lease row, so a concurrent take-over waits for it and
then sees it). Statuses of actions are written only while the epoch has not moved on.

Times are the callers' wall clocks (``Clock.now()``), which controllers on one host share
and hosts keep in step with NTP; the lease is an order of magnitude longer than the skew.

The functions take a SQLAlchemy ``Connection`` inside a transaction; :class:`HaDb` runs
them off the event loop: PostgreSQL on SQLAlchemy's asyncio engine (psycopg 3), SQLite
on the store's writer thread (one writer, as SQLite wants).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from sqlalchemy import Connection, and_, exists, insert, or_, select, update
from sqlalchemy.exc import SQLAlchemyError

from novacron.errors import StoreError
from novacron.model import Action, ActionId, ActionStatus
from novacron.store import tables as t
from novacron.store.guard import GuardedStore
from novacron.store.ha_tables import ha_fence, ha_leases
from novacron.store.repo import Store, action_row

__all__ = [
    "ClaimResult",
    "FenceToken",
    "HaDb",
    "LeaseRow",
    "acquire",
    "ensure_shards",
    "fenced_apply",
    "fenced_claim",
    "fenced_status",
    "leases",
    "release",
    "rendezvous_owner",
    "renew",
    "shard_of",
]

T = TypeVar("T")
ClaimResult = Literal["claimed", "taken", "fenced"]


@dataclass(frozen=True, slots=True)
class LeaseRow:
    """One shard's lease."""

    shard: int
    holder: str | None
    incarnation: str | None
    epoch: int
    expires_at: float


@dataclass(frozen=True, slots=True)
class FenceToken:
    """What a step carries: who acts, on which shard, under which epoch."""

    node_id: str
    incarnation: str
    shard: int
    epoch: int


def shard_of(target: str, shards: int) -> int:
    """The shard a target hashes into (stable across processes, unlike ``hash``)."""
    return int.from_bytes(hashlib.blake2b(target.encode(), digest_size=8).digest(), "big") % shards


def rendezvous_owner(shard: int, nodes: Iterable[str]) -> str | None:
    """The node that should hold ``shard``: highest random weight over the live nodes."""
    best: tuple[int, str] | None = None
    for node in nodes:
        weight = int.from_bytes(hashlib.blake2b(f"{node}/{shard}".encode(), digest_size=8).digest(), "big")
        if best is None or (weight, node) > best:
            best = (weight, node)
    return None if best is None else best[1]


def ensure_shards(conn: Connection, shards: int) -> None:
    """Create the lease rows of shards ``0..shards-1`` that do not exist yet."""
    have = set(conn.execute(select(ha_leases.c.shard)).scalars())
    missing = [{"shard": s, "epoch": 0, "expires_at": 0.0} for s in range(shards) if s not in have]
    if missing:
        conn.execute(insert(ha_leases), missing)


def renew(conn: Connection, node: str, incarnation: str, *, now: float, lease_s: float) -> dict[int, int]:
    """Extend every unexpired lease this incarnation holds; the shards (and epochs) it still has."""
    mine = and_(ha_leases.c.holder == node, ha_leases.c.incarnation == incarnation, ha_leases.c.expires_at >= now)
    stmt = update(ha_leases).where(mine).values(expires_at=now + lease_s)
    stmt = stmt.returning(ha_leases.c.shard, ha_leases.c.epoch)
    return {int(s): int(e) for s, e in conn.execute(stmt)}


def acquire(
    conn: Connection, node: str, incarnation: str, shards: Iterable[int], *, now: float, lease_s: float
) -> dict[int, int]:
    """Take the free or expired ``shards``, each under a new epoch; those taken, with their epochs."""
    taken: dict[int, int] = {}
    free = or_(ha_leases.c.holder.is_(None), ha_leases.c.expires_at < now)
    for shard in shards:
        stmt = (
            update(ha_leases)
            .where(and_(ha_leases.c.shard == shard, free))
            .values(holder=node, incarnation=incarnation, epoch=ha_leases.c.epoch + 1, expires_at=now + lease_s)
            .returning(ha_leases.c.epoch)
        )
        epoch = conn.execute(stmt).scalar()
        if epoch is not None:
            taken[shard] = int(epoch)
    return taken


def release(conn: Connection, node: str, incarnation: str, shards: Iterable[int]) -> None:
    """Hand ``shards`` back (drain, rebalance, stop): free at once, the epoch kept for the next holder."""
    ids = list(shards)
    if not ids:
        return
    mine = and_(ha_leases.c.shard.in_(ids), ha_leases.c.holder == node, ha_leases.c.incarnation == incarnation)
    conn.execute(update(ha_leases).where(mine).values(holder=None, incarnation=None, expires_at=0.0))


def leases(conn: Connection) -> list[LeaseRow]:
    """Every shard's lease."""
    return [LeaseRow(**r._mapping) for r in conn.execute(select(ha_leases).order_by(ha_leases.c.shard))]


def _held(token: FenceToken, *, now: float | None) -> Any:
    cond = and_(
        ha_leases.c.shard == token.shard,
        ha_leases.c.holder == token.node_id,
        ha_leases.c.incarnation == token.incarnation,
        ha_leases.c.epoch == token.epoch,
    )
    return cond if now is None else and_(cond, ha_leases.c.expires_at > now)


def _still_held(conn: Connection, token: FenceToken, *, valid_until: float) -> bool:
    """The lease is the token's and runs past ``valid_until``; locks the lease row until commit."""
    touch = update(ha_leases).where(_held(token, now=valid_until)).values(epoch=ha_leases.c.epoch)
    return bool(conn.execute(touch).rowcount == 1)


def _log(conn: Connection, token: FenceToken, action: Action, step: str, now: float) -> None:
    conn.execute(
        insert(ha_fence).values(
            action_id=action.id,
            idempotency_key=action.idempotency_key,
            target=action.target,
            node_id=token.node_id,
            shard=token.shard,
            epoch=token.epoch,
            step=step,
            at=now,
        )
    )


def fenced_claim(
    conn: Connection, token: FenceToken, action: Action, status: ActionStatus, *, now: float, valid_until: float
) -> ClaimResult:
    """Claim the action's key under the token: ``claimed``, ``taken`` (the key exists) or ``fenced``."""
    if not _still_held(conn, token, valid_until=valid_until):
        return "fenced"
    # The lease row is locked now, and every claim of this key goes through it: a plain
    # look-up is race-free (no savepoint, which SQLite's driver handles badly).
    key = t.actions.c.idempotency_key == action.idempotency_key
    if conn.execute(select(t.actions.c.id).where(key)).first() is not None:
        return "taken"
    conn.execute(insert(t.actions).values(**action_row(action, status, now=now)))
    _log(conn, token, action, "claim", now)
    return "claimed"


def fenced_apply(conn: Connection, token: FenceToken, action: Action, *, now: float, valid_until: float) -> bool:
    """Whether the action may be applied now under the token (logged when it may)."""
    if not _still_held(conn, token, valid_until=valid_until):
        return False
    _log(conn, token, action, "apply", now)
    return True


def fenced_status(conn: Connection, token: FenceToken, action_id: ActionId, values: dict[str, Any]) -> bool:
    """Write an action's status only while the token's epoch is still the shard's."""
    current = exists(select(ha_leases.c.shard).where(_held(token, now=None)))
    stmt = update(t.actions).where(and_(t.actions.c.id == action_id, current)).values(**values)
    return bool(conn.execute(stmt).rowcount == 1)


class HaDb:
    """Runs lease and fencing transactions off the event loop."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._async: Any = None
        url = store.engine.url
        if url.get_backend_name() == "postgresql":
            from sqlalchemy.ext.asyncio import create_async_engine  # noqa: PLC0415 - PostgreSQL only

            self._async = create_async_engine(url.set(drivername="postgresql+psycopg_async"), pool_pre_ping=True)

    async def run(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn(conn)`` in one transaction and return its result (a failing store: StoreError)."""
        if self._async is not None:
            try:
                async with self._async.begin() as conn:
                    result: T = await conn.run_sync(fn)
                    return result
            except SQLAlchemyError as exc:
                raise StoreError(f"store transaction failed: {str(exc).split(chr(10))[0]}", delay=0.5) from exc
        if isinstance(self._store, GuardedStore):
            return await asyncio.wrap_future(self._store.call(fn))
        return await asyncio.to_thread(self._in_transaction, fn)

    def _in_transaction(self, fn: Callable[[Connection], T]) -> T:
        with self._store.engine.begin() as conn:
            return fn(conn)

    def run_sync(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn(conn)`` in one transaction on the caller's thread (start-up, CLI)."""
        if isinstance(self._store, GuardedStore):
            return self._store.call(fn).result()
        return self._in_transaction(fn)

    async def close(self) -> None:
        """Release the asyncio engine's connections."""
        if self._async is not None:
            await self._async.dispose()
