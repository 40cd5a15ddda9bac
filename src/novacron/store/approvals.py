"""Approval requests in the store: asked by one node, decided once by any, waited on by the target's owner.

A request is one row of ``approvals`` beside its action's row (status ``awaiting_approval``).
Any node's API or CLI decides it with one conditional ``UPDATE``: only while the request is
open and its action still awaits approval, so of two decisions racing on two nodes one
lands and the other is refused (the row lock orders them on PostgreSQL, the write lock on
SQLite). The node that owns the target reads the decisions of its open requests.

The functions take a ``Connection`` inside a transaction; :func:`run` and :func:`run_sync`
run them on a store (after the writes a write-behind store still queues, so a node's own
request is always there when its own API decides it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import Connection, and_, exists, insert, select, update

from novacron.errors import ConflictError, NotFoundError, StoreError
from novacron.model import Action, ActionStatus
from novacron.store import tables as t
from novacron.store.guard import GuardedStore
from novacron.store.records import action_from_row
from novacron.store.repo import Store

__all__ = ["Answer", "Request", "answers", "ask", "decide", "open_requests", "run", "run_sync", "withdraw"]

T = TypeVar("T")
_AWAITING = ActionStatus.AWAITING_APPROVAL.value
_PAST = {"approve": "approved", "reject": "rejected", "withdrawn": "withdrawn"}


@dataclass(frozen=True, slots=True)
class Answer:
    """How a request was closed: approved or rejected by a human, or withdrawn by the controller."""

    approve: bool
    who: str
    withdrawn: bool = False


@dataclass(frozen=True, slots=True)
class Request:
    """An open request: the action, the node that asked and when."""

    action: Action
    asked_by: str
    asked_at: float | None  # None: asked on this node, its row still queued for the store


def ask(conn: Connection, action_id: str, *, node: str, now: float) -> bool:
    """Store the request (once: an existing one is kept); whether it was new."""
    if conn.execute(select(t.approvals.c.action_id).where(t.approvals.c.action_id == action_id)).first() is not None:
        return False
    conn.execute(insert(t.approvals).values(action_id=action_id, asked_by=node, asked_at=now))
    return True


def decide(conn: Connection, action_id: str, *, approve: bool, who: str, node: str, now: float) -> None:
    """Write the one decision of an open request whose action awaits approval, or refuse naming why."""
    still_open = and_(t.approvals.c.action_id == action_id, t.approvals.c.decision.is_(None))
    moved_on = exists(
        select(t.actions.c.id).where(t.actions.c.id == action_id, t.actions.c.status != _AWAITING)
    )  # no action row at all: a request made outside the executor, still decidable
    word = "approve" if approve else "reject"
    stmt = update(t.approvals).where(and_(still_open, ~moved_on))
    stmt = stmt.values(decision=word, decided_by=who, decided_on=node, decided_at=now)
    if conn.execute(stmt).rowcount == 1:
        return
    row = conn.execute(select(t.approvals).where(t.approvals.c.action_id == action_id)).mappings().first()
    if row is None:
        raise NotFoundError(f"no action {action_id!r} awaits approval")
    if row["decision"] is not None:
        raise ConflictError(
            f"action {action_id!r} was already {_PAST[row['decision']]} by {row['decided_by']} "
            f"(on {row['decided_on']}); nothing changed"
        )
    status = conn.execute(select(t.actions.c.status).where(t.actions.c.id == action_id)).scalar()
    raise ConflictError(f"action {action_id!r} does not await approval (it is {status}); nothing changed")


def withdraw(conn: Connection, action_id: str, *, why: str, node: str, now: float) -> Answer | None:
    """Close an open request without a human (its target recovered); a decision that won the race is returned."""
    still_open = and_(t.approvals.c.action_id == action_id, t.approvals.c.decision.is_(None))
    stmt = (
        update(t.approvals)
        .where(still_open)
        .values(decision="withdrawn", decided_by=why, decided_on=node, decided_at=now)
    )
    if conn.execute(stmt).rowcount == 1:
        return None
    return answers(conn, [action_id]).get(action_id)


def answers(conn: Connection, action_ids: Iterable[str]) -> dict[str, Answer]:
    """The decided requests among ``action_ids``."""
    ids = list(action_ids)
    if not ids:
        return {}
    a = t.approvals.c
    rows = conn.execute(
        select(a.action_id, a.decision, a.decided_by).where(a.action_id.in_(ids), a.decision.is_not(None))
    )
    return {r.action_id: Answer(r.decision == "approve", r.decided_by or "", r.decision == "withdrawn") for r in rows}


def open_requests(conn: Connection) -> list[Request]:
    """Every open request of the fleet whose action awaits approval, oldest first."""
    stmt = (
        select(t.actions, t.approvals.c.asked_by, t.approvals.c.asked_at)
        .join(t.approvals, t.approvals.c.action_id == t.actions.c.id)
        .where(t.approvals.c.decision.is_(None), t.actions.c.status == _AWAITING)
        .order_by(t.approvals.c.asked_at)
    )
    return [Request(action_from_row(dict(r._mapping)).action, r.asked_by, r.asked_at) for r in conn.execute(stmt)]


async def run(store: Store, fn: Callable[[Connection], T]) -> T:
    """Run ``fn(conn)`` in one transaction off the event loop (after the store's queued writes)."""
    if isinstance(store, GuardedStore):
        failing = store.condition
        if failing.degraded:  # queued behind writes that keep failing, it would land at some unknown later time
            raise StoreError(f"the store is failing ({failing.last_error}); nothing was decided", delay=1.0)
        return await asyncio.wrap_future(store.call(fn))
    return await asyncio.to_thread(_in_transaction, store, fn)


def run_sync(store: Store, fn: Callable[[Connection], T]) -> T:
    """Run ``fn(conn)`` in one transaction on the calling thread (a CLI, in-process callers)."""
    if isinstance(store, GuardedStore):
        return store.call(fn).result()
    return _in_transaction(store, fn)


def _in_transaction(store: Store, fn: Callable[[Connection], T]) -> T:
    with store.engine.begin() as conn:
        return fn(conn)
