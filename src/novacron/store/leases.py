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
import functools
import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from sqlalchemy import Connection, Engine, and_, create_engine, exists, func, insert, or_, select, update
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from novacron.errors import StoreError
from novacron.model import Action, ActionId, ActionStatus
from novacron.store import tables as t
from novacron.store.db import pg_connect_args
from novacron.store.guard import GuardedStore
from novacron.store.ha_tables import ha_fence, ha_leases
from novacron.store.repo import Store, action_row, incident_insert

__all__ = [
    "BUDGET_ROW",
    "Budget",
    "ClaimResult",
    "FenceToken",
    "HaDb",
    "LeaseRow",
    "acquire",
    "assignment",
    "ensure_shards",
    "fenced_adopt",
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
BUDGET_ROW = -1  # a row of ha_leases no node ever holds: the lock of the fleet-wide budget
ClaimResult = Literal["claimed", "taken", "fenced", "over_budget"]
_INFLIGHT = ("planned", "applying", "applied")


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


def _weight(node: str, shard: int) -> int:
    return int.from_bytes(hashlib.blake2b(f"{node}/{shard}".encode(), digest_size=8).digest(), "big")


@functools.lru_cache(maxsize=64)
def assignment(shards: int, nodes: tuple[str, ...]) -> dict[int, str]:
    """Which live node should hold each shard: rendezvous hashing with bounded load.

    Every shard goes to its highest-weight node that still has room, at most
    ``ceil(shards / len(nodes))`` shards per node, taking the (weight, node, shard)
    pairs from the heaviest down. Plain rendezvous hashing leaves 64 shards over three
    nodes tens of percent apart; bounded, the shard counts differ by at most one. Every
    node computes the same answer from the same live set, and when a node leaves only
    its shards and a few others move.
    """
    pool = sorted(set(nodes))
    if not pool:
        return {}
    room = -(-shards // len(pool))
    pairs = sorted(((_weight(n, sh), n, sh) for sh in range(shards) for n in pool), reverse=True)
    load = dict.fromkeys(pool, 0)
    out: dict[int, str] = {}
    for _w, node, shard in pairs:
        if shard not in out and load[node] < room:
            out[shard] = node
            load[node] += 1
    return out


def ensure_shards(conn: Connection, shards: int) -> None:
    """Create the lease rows of shards ``0..shards-1`` (and the budget lock row) that do not exist yet."""
    have = set(conn.execute(select(ha_leases.c.shard)).scalars())
    missing = [{"shard": s, "epoch": 0, "expires_at": 0.0} for s in (BUDGET_ROW, *range(shards)) if s not in have]
    if missing:  # several controllers starting at once on a new store: the first insert wins
        from sqlalchemy.dialects import postgresql, sqlite  # noqa: PLC0415 - the upsert is per dialect

        upsert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
        conn.execute(upsert(ha_leases).on_conflict_do_nothing(index_elements=["shard"]), missing)


def renew(conn: Connection, node: str, incarnation: str, *, now: float, lease_s: float) -> dict[int, int]:
    """Extend every unexpired lease this incarnation holds; the shards (and epochs) it still has."""
    mine = and_(ha_leases.c.holder == node, ha_leases.c.incarnation == incarnation, ha_leases.c.expires_at >= now)
    stmt = update(ha_leases).where(mine).values(expires_at=now + lease_s)
    stmt = stmt.returning(ha_leases.c.shard, ha_leases.c.epoch)
    return {int(s): int(e) for s, e in conn.execute(stmt)}


def acquire(
    conn: Connection, node: str, incarnation: str, shards: Iterable[int], *, now: float, lease_s: float
) -> dict[int, int]:
    """Take the free or expired ``shards``, each under a new epoch; those taken, with their epochs.

    A row another transaction holds locked is skipped (``SKIP LOCKED``; taken on a later
    tick): a session cut off mid-transaction must not stall every other node's tick.
    """
    ids = list(shards)
    if not ids:
        return {}
    free = or_(ha_leases.c.holder.is_(None), ha_leases.c.expires_at < now)
    lockable = select(ha_leases.c.shard).where(and_(ha_leases.c.shard.in_(ids), free)).with_for_update(skip_locked=True)
    stmt = (
        update(ha_leases)
        .where(and_(ha_leases.c.shard.in_(lockable), free))
        .values(holder=node, incarnation=incarnation, epoch=ha_leases.c.epoch + 1, expires_at=now + lease_s)
        .returning(ha_leases.c.shard, ha_leases.c.epoch)
    )
    return {int(s): int(e) for s, e in conn.execute(stmt)}


def release(conn: Connection, node: str, incarnation: str, shards: Iterable[int]) -> None:
    """Hand ``shards`` back (drain, rebalance, stop): free at once, the epoch kept for the next holder."""
    ids = list(shards)
    if not ids:
        return
    mine = and_(ha_leases.c.shard.in_(ids), ha_leases.c.holder == node, ha_leases.c.incarnation == incarnation)
    conn.execute(update(ha_leases).where(mine).values(holder=None, incarnation=None, expires_at=0.0))


def leases(conn: Connection) -> list[LeaseRow]:
    """Every shard's lease."""
    stmt = select(ha_leases).where(ha_leases.c.shard >= 0).order_by(ha_leases.c.shard)
    return [LeaseRow(**r._mapping) for r in conn.execute(stmt)]


def _held(token: FenceToken, *, now: float | None) -> Any:
    cond = and_(
        ha_leases.c.shard == token.shard,
        ha_leases.c.holder == token.node_id,
        ha_leases.c.incarnation == token.incarnation,
        ha_leases.c.epoch == token.epoch,
    )
    return cond if now is None else and_(cond, ha_leases.c.expires_at > now)


def _still_held(conn: Connection, token: FenceToken, *, valid_until: float) -> float | None:
    """When the lease expires, if it is the token's and runs past ``valid_until``; locks the row until commit."""
    touch = update(ha_leases).where(_held(token, now=valid_until)).values(epoch=ha_leases.c.epoch)
    expires = conn.execute(touch.returning(ha_leases.c.expires_at)).scalar()
    return None if expires is None else float(expires)


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


@dataclass(frozen=True, slots=True)
class Budget:
    """The fleet-wide blast radius: at most ``cap`` targets with an action in flight, across all controllers.

    In-flight actions older than ``horizon_s`` (left by a controller that died mid-action
    and not yet reconciled by the target's new owner) no longer count.
    """

    cap: int
    horizon_s: float


def fenced_claim(
    conn: Connection,
    token: FenceToken,
    action: Action,
    status: ActionStatus,
    *,
    now: float,
    valid_until: float,
    budget: Budget | None = None,
    incident: dict[str, Any] | None = None,
) -> ClaimResult:
    """Claim the action's key under the token.

    ``claimed``; ``taken`` (the key exists); ``fenced`` (the lease moved on); ``over_budget``
    (the fleet already has ``budget.cap`` other targets under remediation).

    ``incident``: the row of the incident the action references, written first when it is
    not in the store yet. The controller's own write of it may still be queued behind
    others (a store that lagged after a restart or an ended session): the claim must not
    fail on its reference, nor wait for that queue. It is written before the lease row
    and the budget row are locked: an insert of the same row by this node's writer, left
    uncommitted by a link cut mid-transaction, makes it wait, and a claim waiting while
    it holds them would stall every controller's claims and this node's heartbeat.
    """
    if incident is not None:
        conn.execute(incident_insert(conn.dialect.name, incident))
    budgeted = budget if action.inverse_of is None else None
    if budgeted is not None:
        # The budget lock first, the lease row after: a claim waiting for the budget (held by
        # a controller paused mid-claim until the server ends its session) holds no lease
        # row, so its node's heartbeat still renews every lease meanwhile.
        _lock_budget(conn)
    if _still_held(conn, token, valid_until=valid_until) is None:
        return "fenced"
    if budgeted is not None and not _within_budget(conn, action, budgeted, now=now):
        return "over_budget"
    # The lease row is locked now, and every claim of this key goes through it: a plain
    # look-up is race-free (no savepoint, which SQLite's driver handles badly).
    key = t.actions.c.idempotency_key == action.idempotency_key
    if conn.execute(select(t.actions.c.id).where(key)).first() is not None:
        return "taken"
    conn.execute(insert(t.actions).values(**action_row(action, status, now=now)))
    _log(conn, token, action, "claim", now)
    return "claimed"


def _lock_budget(conn: Connection) -> None:
    """Take the fleet-wide budget lock, held until the transaction ends."""
    # One row serialises every budget decision of every controller (a row lock on
    # PostgreSQL, the write lock on SQLite): two claims cannot both see the last slot.
    conn.execute(update(ha_leases).where(ha_leases.c.shard == BUDGET_ROW).values(epoch=ha_leases.c.epoch + 1))


def _within_budget(conn: Connection, action: Action, budget: Budget, *, now: float) -> bool:
    """Count, under the fleet-wide budget lock (:func:`_lock_budget`), the other targets with an action in flight."""
    busy = (
        select(func.count(func.distinct(t.actions.c.target)))
        .where(t.actions.c.status.in_(_INFLIGHT))
        .where(t.actions.c.target != action.target)
        .where(t.actions.c.created_at > now - budget.horizon_s)
    )
    return int(conn.execute(busy).scalar_one()) < budget.cap


def fenced_apply(
    conn: Connection, token: FenceToken, action: Action, *, now: float, valid_until: float
) -> float | None:
    """When the lease expires if the action may be applied now under the token (logged), else None."""
    expires = _still_held(conn, token, valid_until=valid_until)
    if expires is not None:
        _log(conn, token, action, "apply", now)
    return expires


def fenced_adopt(conn: Connection, token: FenceToken, action: Action, *, now: float, valid_until: float) -> bool:
    """Take over a step claimed under an earlier lease that never reached its actuator.

    Every apply passes :func:`fenced_apply`, which logs it in the same transaction as its
    lease check; a claimed action with no apply logged was never applied, and its claimer,
    whose epoch has moved on, never will be. The new holder may apply it (logged as
    ``adopt``) instead of waiting for a repair that nobody made.
    """
    if _still_held(conn, token, valid_until=valid_until) is None:
        return False
    applied = select(ha_fence.c.action_id).where(ha_fence.c.action_id == action.id, ha_fence.c.step == "apply")
    if conn.execute(applied.limit(1)).first() is not None:
        return False
    _log(conn, token, action, "adopt", now)
    return True


def fenced_status(conn: Connection, token: FenceToken, action_id: ActionId, values: dict[str, Any]) -> bool:
    """Write an action's status only while the token's epoch is still the shard's."""
    current = exists(select(ha_leases.c.shard).where(_held(token, now=None)))
    stmt = update(t.actions).where(and_(t.actions.c.id == action_id, current)).values(**values)
    return bool(conn.execute(stmt).rowcount == 1)


class HaDb:
    """Runs lease and fencing transactions off the event loop."""

    def __init__(self, store: Store, *, idle_s: float = 2.0) -> None:
        self._store = store
        self._async: Any = None
        self._sync: Engine | None = None
        url = store.engine.url
        if url.get_backend_name() == "postgresql":
            from sqlalchemy.ext.asyncio import create_async_engine  # noqa: PLC0415 - PostgreSQL only

            # A lease or fencing transaction takes milliseconds; one whose controller was
            # cut off or paused mid-way must not keep the lease rows locked past a lease.
            # A fencing transaction (a claim) holds the fleet-wide budget lock, which every
            # controller's claims wait for: ended after half of that, so a controller paused
            # mid-claim delays the others' failovers by at most half a lease.
            self._async = create_async_engine(
                url.set(drivername="postgresql+psycopg_async"),
                pool_pre_ping=True,
                connect_args=pg_connect_args(idle_s / 2),
            )
            # the heartbeat thread's own connection (runtime/ha.py): never queued behind other work
            self._sync = create_engine(
                url.set(drivername="postgresql+psycopg"),
                pool_size=1,
                max_overflow=0,
                pool_pre_ping=True,
                connect_args=pg_connect_args(idle_s),
            )

    async def run(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn(conn)`` in one transaction and return its result (a failing store: StoreError)."""
        if self._async is not None:
            for attempt in (1, 2):
                try:
                    async with self._async.begin() as conn:
                        result: T = await conn.run_sync(fn)
                        return result
                except DBAPIError as exc:
                    # A session the server ended (pg_terminate_backend, a restart) fails once;
                    # the pool reconnects and the transaction runs again on a fresh one. Each
                    # step is safe to repeat: a claim finds its key, an apply is logged again.
                    if attempt == 1 and exc.connection_invalidated:
                        continue
                    raise StoreError(f"store transaction failed: {str(exc).split(chr(10))[0]}", delay=0.5) from exc
                except SQLAlchemyError as exc:
                    raise StoreError(f"store transaction failed: {str(exc).split(chr(10))[0]}", delay=0.5) from exc
        if isinstance(self._store, GuardedStore):
            return await asyncio.wrap_future(self._store.call(fn))
        return await asyncio.to_thread(self._in_transaction, fn)

    def _in_transaction(self, fn: Callable[[Connection], T]) -> T:
        with self._store.engine.begin() as conn:
            return fn(conn)

    @property
    def threaded(self) -> bool:
        """Whether :meth:`run_blocking` has a connection of its own (PostgreSQL)."""
        return self._sync is not None

    def run_blocking(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn(conn)`` in one transaction on the calling thread, on a connection of its own."""
        if self._sync is None:
            return self.run_sync(fn)
        try:
            with self._sync.begin() as conn:
                return fn(conn)
        except SQLAlchemyError as exc:
            raise StoreError(f"store transaction failed: {str(exc).split(chr(10))[0]}", delay=0.5) from exc

    def run_sync(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn(conn)`` in one transaction on the caller's thread (start-up, CLI)."""
        if isinstance(self._store, GuardedStore):
            return self._store.call(fn).result()
        return self._in_transaction(fn)

    async def close(self) -> None:
        """Release the asyncio engine's connections."""
        if self._async is not None:
            await self._async.dispose()
        if self._sync is not None:
            self._sync.dispose()
