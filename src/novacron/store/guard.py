"""Write-behind for the healing path: store writes leave the event loop and outlive store faults.

The controller's loop must never wait on a disk or a database, and a store that fails
(a full filesystem, PostgreSQL restarting, a cut link) must not stop healing. So every
write the controller makes — incidents, faults, timeline lines, action claims and
statuses, audit lines, process and status rows, settings, safety rails, pages — is
queued, in order, and one writer thread applies them. A write that fails stays at the head of the queue and is
retried with backoff until the store takes it again: nothing is lost and nothing is
reordered. While writes fail the store is *degraded*; the condition (queued writes,
failures, the last error) goes to a listener that logs it, exports it as metrics and
shows it in ``/health`` and ``novacron status``.

Reads see the process's own writes: a read waits (briefly) for the queue to drain
first, and idempotency keys this process claimed are answered from memory, so a
claim made while the store is down still blocks a second application of the same key.
The healing path does not wait on the loop: :meth:`GuardedStore.read_action_by_key`
reads on a worker thread (without waiting for the queue), and :meth:`GuardedStore.settle`
awaits a barrier; a synchronous read on the loop would stall every probe for as long as
the writes queued before it take.

Under simulated time (the twin) the same store runs *inline* (``open(url, inline=True)``):
writes keep their order, claims and retry-at-the-head, but are applied at once on the
caller's thread, with no writer thread. A writer thread works in real time while the
simulated event loop, finding nothing ready, moves simulated time on: every write would
then cost the twin simulated time that the real controller never spends.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, Self, TypeVar

from sqlalchemy import Connection, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from novacron.errors import StoreConstraintError, StoreError
from novacron.model import Action, ActionId, ActionStatus, Fault, IncidentId
from novacron.store import tables as t
from novacron.store.records import ActionRecord, action_from_row
from novacron.store.repo import Store

__all__ = ["GuardedStore", "StoreCondition"]

T = TypeVar("T")

_RETRY_FIRST_S = 0.05
_RETRY_MAX_S = 2.0
_READ_WAIT_S = 2.0
_SETTLE_S = 2.0  # a healthy store drains in milliseconds; a degraded one is not waited for
_CLAIMS_KEPT = 4096  # committed claims remembered; uncommitted ones are kept until they land


@dataclass(frozen=True, slots=True)
class StoreCondition:
    """The store as the healing path sees it."""

    degraded: bool
    pending: int  # writes queued, not yet in the store
    failures: int  # failed write attempts since the start
    last_error: str | None = None
    since: float | None = None  # wall-clock time the store became degraded
    dropped: int = 0  # writes the store refused for good (a constraint, never a fault)


@dataclass(slots=True)
class _Write:
    verb: str
    apply: Callable[[], object]
    claim: str | None = None  # the idempotency key this write commits, if any
    done: Future[Any] | None = None  # a call whose caller waits for its result: run once, never retried


class GuardedStore(Store):
    """A :class:`Store` whose healing-path writes go through one ordered, retrying writer thread."""

    def __init__(self, engine: Any, *, inline: bool = False) -> None:
        """``inline``: apply writes on the caller's thread as they come (simulated time)."""
        super().__init__(engine)
        self.inline = inline
        self.on_change: Callable[[StoreCondition], None] | None = None
        self._queue: deque[_Write] = deque()
        self._cv = threading.Condition()
        self._busy = False
        self._closed = False
        self._condition = StoreCondition(degraded=False, pending=0, failures=0)
        self._claims: OrderedDict[str, ActionRecord] = OrderedDict()
        self._claim_ids: dict[str, str] = {}
        self._uncommitted: set[str] = set()
        self._writer: int | None = None  # the thread applying writes now (inline: the caller's)
        self._thread: threading.Thread | None = None  # started by the first queued write

    @classmethod
    def open(cls, url: str, *, create: bool = True, inline: bool = False) -> Self:
        """:meth:`Store.open`; ``inline`` applies writes on the caller's thread (see the module docstring)."""
        store = super().open(url, create=create)
        store.inline = inline
        return store

    def _on_writer(self) -> bool:
        return self._writer == threading.get_ident()

    # -- condition ---------------------------------------------------------------------
    @property
    def condition(self) -> StoreCondition:
        """The current condition (degraded or not, queued writes, failures)."""
        with self._cv:
            return replace(self._condition, pending=len(self._queue) + int(self._busy))

    def flush(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for every queued write to land; True when none is left."""
        if self._on_writer():
            return not self._queue
        if self.inline:
            with self._cv:
                self._drain()
                return not self._queue
        deadline = time.monotonic() + timeout
        with self._cv:
            while self._queue or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cv.wait(left)
        return True

    async def settle(self, timeout: float = _SETTLE_S) -> bool:
        """Wait (on the loop, not blocking it) until what was queued so far is in the store.

        For writes that must be durable before an effect (an idempotency key before its
        action): a healthy store takes them in milliseconds. A degraded one is not waited
        for — healing goes on from memory — and False says so.
        """
        if self._condition.degraded:
            return False
        if self.inline:
            return self.flush(0.0)
        barrier = self.call(lambda _conn: None)
        try:
            await asyncio.wait_for(asyncio.wrap_future(barrier), timeout)
        except (TimeoutError, StoreError):
            return False
        return True

    def close(self) -> None:
        """Land what can still land, stop the writer, release connections."""
        self.flush(0.5 if self._condition.degraded else 10.0)
        with self._cv:
            self._closed = True
            lost = len(self._queue)
            self._cv.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
        if lost:
            self._set(replace(self._condition, last_error=f"{lost} writes never reached the store before stop"))
        super().close()

    # -- reads see our own writes ------------------------------------------------------
    def _rows(self, stmt: Any) -> list[Any]:
        if not self._condition.degraded:
            self.flush(_READ_WAIT_S)
        return super()._rows(stmt)

    # -- claims: memory first, so a key claimed while the store is down stays claimed ---
    def claim_action(self, action: Action, status: ActionStatus, *, now: float) -> ActionRecord | None:
        """Claim ``action``'s key; the record already holding it when it is not free."""
        held = self._claims.get(action.idempotency_key)
        if held is not None:
            return held
        key = action.idempotency_key
        self._remember(key, ActionRecord(action, status, now, None, None, ""))
        self._uncommitted.add(key)
        self._submit("claim_action", partial(Store.claim_action, self, action, status, now=now), claim=key)
        return None

    def action_by_key(self, key: str) -> ActionRecord | None:
        """The action under ``key``: this process's claims from memory, others from the store."""
        held = self._claims.get(key)
        if held is not None:
            return held
        return super().action_by_key(key)

    async def read_action_by_key(self, key: str) -> ActionRecord | None:
        """:meth:`action_by_key` without blocking the event loop, and without waiting for the queue.

        This process's claims are answered from memory; a fenced claim (several
        controllers) was committed in its own transaction before anything was applied. So
        any other key is read on a worker thread at once, not after the queued writes: on a
        node that just took over many incidents, each healer's read waited up to 2 s for the
        queue, and they queued for the worker threads behind one another, seconds before
        the first action. Only a status change this node queued for a fenced action may not
        be seen yet; an action still seen in flight is judged (reconciled), never applied
        again (the fencing log shows it applied).
        """
        held = self._claims.get(key)
        if held is not None:
            return held
        if self.inline:  # simulated time: a worker thread's real time would pass as simulated
            return super().action_by_key(key)
        stmt = select(t.actions).where(t.actions.c.idempotency_key == key)
        rows = await asyncio.to_thread(Store._rows, self, stmt)
        return action_from_row(rows[0]) if rows else None

    def set_action_status(
        self,
        action_id: ActionId,
        status: ActionStatus,
        *,
        started_at: float | None = None,
        finished_at: float | None = None,
        detail: str | None = None,
    ) -> None:
        """Queue the status change (and mirror it on the remembered claim)."""
        key = self._claim_ids.get(action_id)
        rec = self._claims.get(key) if key is not None else None
        if key is not None and rec is not None:
            self._claims[key] = replace(
                rec,
                status=status,
                started_at=started_at if started_at is not None else rec.started_at,
                finished_at=finished_at if finished_at is not None else rec.finished_at,
                detail=detail if detail is not None else rec.detail,
            )
        self._submit(
            "set_action_status",
            partial(
                Store.set_action_status,
                self,
                action_id,
                status,
                started_at=started_at,
                finished_at=finished_at,
                detail=detail,
            ),
        )

    def _remember(self, key: str, rec: ActionRecord) -> None:
        self._claims[key] = rec
        self._claim_ids[rec.action.id] = key
        self._claims.move_to_end(key)
        while len(self._claims) > _CLAIMS_KEPT:
            oldest = next(iter(self._claims))
            if oldest in self._uncommitted:
                break  # never forget a claim the store does not have yet
            self._claim_ids.pop(self._claims.pop(oldest).action.id, None)

    # -- the queued writes: every statement made off the writer thread ----------------
    def _exec(self, stmt: Any) -> Any:
        if self._on_writer():
            return super()._exec(stmt)
        table = getattr(stmt, "table", None)
        self._submit(f"{stmt.__visit_name__} {getattr(table, 'name', '')}".strip(), partial(Store._exec, self, stmt))
        return None

    def add_fault(self, fault: Fault, incident_id: IncidentId) -> None:
        """Queue a fault (the same fault filed twice is still one fault, and no error)."""
        self._submit("insert faults", partial(Store.add_fault, self, fault, incident_id))

    def write(self, verb: str, fn: Callable[[Connection], object]) -> None:
        """Queue ``fn(conn)`` as one more write: run in one transaction, in order, retried until it lands."""

        def run() -> object:
            try:
                with self.engine.begin() as conn:
                    return fn(conn)
            except IntegrityError:
                raise
            except SQLAlchemyError as exc:
                raise StoreError(f"store write failed: {_first_line(exc)}", delay=0.5) from exc

        self._submit(verb, run)

    def call(self, fn: Callable[[Connection], T]) -> Future[T]:
        """Run ``fn(conn)`` in one transaction on the writer thread, after the writes queued before it."""
        done: Future[T] = Future()

        def run() -> T:
            try:
                with self.engine.begin() as conn:
                    return fn(conn)
            except SQLAlchemyError as exc:
                raise StoreError(f"store transaction failed: {_first_line(exc)}", delay=0.5) from exc

        self._submit("call", run, done=done)
        return done

    def _submit(
        self, verb: str, write: Callable[[], object], *, claim: str | None = None, done: Future[Any] | None = None
    ) -> None:
        with self._cv:
            if self._closed:
                raise StoreError("the store is closed", delay=0.0)
            self._queue.append(_Write(verb, write, claim, done))
            if self.inline:
                self._drain()
                return
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="store-writer", daemon=True)
                self._thread.start()
            self._cv.notify_all()

    def _drain(self) -> None:
        """Inline: apply the queue in order on this thread, holding the lock; a failed write stays at the head.

        It is tried again on the next write, read or flush (a write queued by a write
        being applied waits for the drain already running).
        """
        if self._writer is not None:
            return
        self._writer = threading.get_ident()
        try:
            while self._queue:
                if not self._land(self._queue[0]):
                    return
        finally:
            self._writer = None

    # -- the writer thread -------------------------------------------------------------
    def _land(self, item: _Write) -> bool:
        """Apply the head of the queue; on success take it off (caller holds the lock)."""
        if not self._attempt(item):
            return False
        self._queue.popleft()
        if item.claim is not None:
            self._uncommitted.discard(item.claim)
        if self._condition.degraded and not self._queue:
            self._set(replace(self._condition, degraded=False, since=None))
        return True

    def _run(self) -> None:
        self._writer = threading.get_ident()
        delay = _RETRY_FIRST_S
        while True:
            with self._cv:
                while not self._queue and not self._closed:
                    self._cv.wait()
                if not self._queue:
                    return
                item = self._queue[0]
                self._busy = True
            ok = self._attempt(item)
            with self._cv:
                self._busy = False
                if ok:
                    self._queue.popleft()
                    if item.claim is not None:
                        self._uncommitted.discard(item.claim)
                self._cv.notify_all()
                closed = self._closed
            if ok:
                delay = _RETRY_FIRST_S
                if self._condition.degraded and not self._queue:
                    self._set(replace(self._condition, degraded=False, since=None))
                continue
            if closed:
                return
            with self._cv:
                self._cv.wait(delay)  # woken early only by close()
            delay = min(delay * 2, _RETRY_MAX_S)

    def _attempt(self, item: _Write) -> bool:
        """Apply one write; False when the store failed and it must be retried."""
        if item.done is not None:
            if not item.done.set_running_or_notify_cancel():
                return True  # the caller gave up waiting (cancelled): nothing to run
            try:
                item.done.set_result(item.apply())
            except BaseException as exc:  # the caller gets it, whatever it is
                item.done.set_exception(exc)
            return True
        try:
            item.apply()
        except (IntegrityError, StoreConstraintError) as exc:  # a constraint refused it: retrying cannot help
            c = self._condition
            self._set(replace(c, dropped=c.dropped + 1, last_error=f"{item.verb} refused: {_first_line(exc)}"))
        except StoreError as exc:
            c = self._condition
            self._set(
                replace(
                    c,
                    degraded=True,
                    failures=c.failures + 1,
                    last_error=f"{item.verb}: {_first_line(exc)}",
                    since=c.since if c.since is not None else time.time(),
                )
            )
            return False
        except Exception as exc:  # a bad write must not kill the writer; it is reported
            c = self._condition
            self._set(replace(c, dropped=c.dropped + 1, last_error=f"{item.verb} failed: {exc!r}"))
        return True

    def _set(self, condition: StoreCondition) -> None:
        self._condition = condition
        if self.on_change is not None:
            self.on_change(self.condition)


def _first_line(exc: BaseException) -> str:
    """The error without the SQL statement and parameters SQLAlchemy appends."""
    return str(exc).split("\n", 1)[0][:300]
