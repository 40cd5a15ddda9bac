"""Pending approvals: risky actions wait here for a human's yes or no."""

from __future__ import annotations

import asyncio

from novacron.errors import NotFoundError
from novacron.model import Action

__all__ = ["Approvals"]


class Approvals:
    """Futures keyed by action id, resolved by :meth:`decide`."""

    def __init__(self) -> None:
        self._pending: dict[str, tuple[Action, asyncio.Future[tuple[bool, str]]]] = {}

    def request(self, action: Action) -> asyncio.Future[tuple[bool, str]]:
        """Register ``action`` as awaiting approval; await the returned future."""
        fut: asyncio.Future[tuple[bool, str]] = asyncio.get_running_loop().create_future()
        self._pending[action.id] = (action, fut)
        return fut

    def decide(self, action_id: str, *, approve: bool, who: str) -> Action:
        """Approve or reject a pending action."""
        try:
            action, fut = self._pending.pop(action_id)
        except KeyError:
            raise NotFoundError(f"no action {action_id!r} awaits approval") from None
        if not fut.done():
            fut.set_result((approve, who))
        return action

    def pending(self) -> list[Action]:
        """Actions waiting for a decision."""
        return [a for a, _ in self._pending.values()]

    def cancel(self, action_id: str) -> None:
        """Withdraw a request (its incident resolved on its own)."""
        entry = self._pending.pop(action_id, None)
        if entry is not None and not entry[1].done():
            entry[1].cancel()
