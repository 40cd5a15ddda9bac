"""Pending approvals: risky actions wait here for a human's yes or no.

With a store, a request is stored (:mod:`novacron.store.approvals`) so that any node's API
or CLI decides it, once, in one transaction. The node that owns the target waits on the
stored decision: at once when it is taken through this node (the fast path), otherwise at
its next poll, every ``poll_s`` (the heartbeat period) while it has requests open. A node
that takes a target over waits on the same request (``ask=False``): the human is not
asked twice. A request whose target has stayed healthy for ``settle_s`` is withdrawn.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable
from dataclasses import dataclass, field

from novacron.clock import Clock, MonotonicClock
from novacron.errors import NotFoundError, StoreError
from novacron.model import Action
from novacron.store import Store
from novacron.store import approvals as stored
from novacron.store.approvals import Answer, Request
from novacron.telemetry import get_logger

__all__ = ["Answer", "Approvals", "Request"]


@dataclass(slots=True)
class _Wait:
    action: Action
    future: asyncio.Future[Answer]
    recovered: Callable[[], bool] | None  # the target is healthy again (the request can be withdrawn)
    settle_s: float
    healthy_since: float | None = field(default=None)


class Approvals:
    """Requests this node waits on, keyed by action id; decided here or, with a store, on any node."""

    def __init__(
        self, store: Store | None = None, *, clock: Clock | None = None, node_id: str = "", poll_s: float = 0.25
    ) -> None:
        """Without ``store`` the requests live in this process alone (tests, one-off tools)."""
        self.store = store
        self.clock = clock or MonotonicClock()
        self.node_id = node_id
        self.poll_s = poll_s
        self._pending: dict[str, _Wait] = {}
        self._poller: asyncio.Task[None] | None = None
        self._log = get_logger(component="approvals")

    def request(
        self,
        action: Action,
        *,
        ask: bool = True,
        recovered: Callable[[], bool] | None = None,
        settle_s: float = 0.0,
    ) -> asyncio.Future[Answer]:
        """Wait for a decision on ``action``; ``ask=False``: the request is already stored (taken over)."""
        fut: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._pending[action.id] = _Wait(action, fut, recovered, settle_s)
        if self.store is not None:
            if ask:
                node, now = self.node_id, self.clock.now()
                self._queue(lambda conn: stored.ask(conn, action.id, node=node, now=now))
            if self._poller is None or self._poller.done():
                self._poller = asyncio.get_running_loop().create_task(self._poll(), name="approvals")
        return fut

    def decide(self, action_id: str, *, approve: bool, who: str) -> None:
        """Approve or reject a request (blocking on the store's transaction; the API uses :meth:`decide_async`)."""
        if self.store is not None:
            stored.run_sync(self.store, self._decision(action_id, approve=approve, who=who))
        elif action_id not in self._pending:
            raise NotFoundError(f"no action {action_id!r} awaits approval")
        self._resolve(action_id, Answer(approve, who))

    async def decide_async(self, action_id: str, *, approve: bool, who: str) -> None:
        """Approve or reject a request: stored in one transaction, then answered here at once if it waits here."""
        if self.store is None:
            self.decide(action_id, approve=approve, who=who)
            return
        await stored.run(self.store, self._decision(action_id, approve=approve, who=who))
        self._resolve(action_id, Answer(approve, who))

    def _decision(self, action_id: str, *, approve: bool, who: str) -> functools.partial[None]:
        """The one transaction that stores a decision, taken by this node now."""
        node, now = self.node_id, self.clock.now()
        return functools.partial(stored.decide, action_id=action_id, approve=approve, who=who, node=node, now=now)

    def pending(self) -> list[Action]:
        """Actions waiting for a decision on this node."""
        return [w.action for w in self._pending.values()]

    async def fleet_pending(self) -> list[Request]:
        """Every open request: the fleet's from the store, plus this node's own not stored yet."""
        found = [] if self.store is None else await stored.run(self.store, stored.open_requests)
        seen = {r.action.id for r in found}
        mine = [Request(w.action, self.node_id, None) for w in self._pending.values() if w.action.id not in seen]
        return found + mine

    def forget(self, action_id: str) -> None:
        """Stop waiting here (a healer handed over or stopped); a stored request stays for the target's owner."""
        self._pending.pop(action_id, None)

    async def close(self) -> None:
        """Stop polling."""
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller

    def _resolve(self, action_id: str, answer: Answer) -> None:
        wait = self._pending.pop(action_id, None)
        if wait is not None and not wait.future.done():
            wait.future.set_result(answer)

    def _queue(self, fn: Callable[..., object]) -> None:
        """A write that need not be waited for: queued on a write-behind store, else made now."""
        assert self.store is not None
        from novacron.store.guard import GuardedStore  # noqa: PLC0415 - only to pick the write path

        if isinstance(self.store, GuardedStore):
            self.store.write("ask approval", fn)
        else:
            stored.run_sync(self.store, fn)

    async def _poll(self) -> None:
        """While requests are open here: read their decisions, and withdraw the ones whose target recovered."""
        while self._pending:
            await self.clock.sleep(self.poll_s)
            assert self.store is not None
            try:
                # the ids are taken here: the read runs on the store's thread
                decided = await stored.run(
                    self.store, functools.partial(stored.answers, action_ids=list(self._pending))
                )
                for action_id, answer in decided.items():
                    self._resolve(action_id, answer)
                for wait in self._recovered():
                    await self._withdraw(wait)
            except StoreError as exc:  # the store is down: keep waiting, ask again next round
                self._log.warning("cannot read approval decisions", error=str(exc))

    def _recovered(self) -> list[_Wait]:
        now, out = self.clock.monotonic(), []
        for wait in self._pending.values():
            if wait.recovered is None or not wait.recovered():
                wait.healthy_since = None
                continue
            wait.healthy_since = now if wait.healthy_since is None else wait.healthy_since
            if now - wait.healthy_since >= wait.settle_s:
                out.append(wait)
        return out

    async def _withdraw(self, wait: _Wait) -> None:
        assert self.store is not None
        action_id, node, now = wait.action.id, self.node_id, self.clock.now()
        why = f"controller: {wait.action.target} recovered before a decision"
        won = await stored.run(self.store, lambda conn: stored.withdraw(conn, action_id, why=why, node=node, now=now))
        self._resolve(action_id, won or Answer(False, why, withdrawn=True))
