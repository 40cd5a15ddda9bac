"""Fencing in the executor: steps on a leased target carry the lease's epoch and stop when it moved on.

With several controllers on one store, a sharded target is acted on only by the holder
of its shard's lease. The executor asks its :class:`Fence` at each step that changes
the world or the store — the claim of the idempotency key, the actuator call, every
status change — and the fence checks the epoch in the store, in the same transaction as
the write. A refused step raises :class:`FencedError`: the healer stops there and the
lease's new holder carries the incident on.
"""

from __future__ import annotations

from typing import Protocol

from novacron.errors import NovacronError
from novacron.model import Action, ActionStatus, Incident
from novacron.store.leases import ClaimResult

__all__ = ["ClaimResult", "Fence", "FencedError"]


class FencedError(NovacronError):
    """This controller no longer holds the lease of the action's target (its epoch moved on)."""


class Fence(Protocol):
    """The lease side of the executor (:class:`~novacron.runtime.ha.HaMember` is the real one)."""

    def guards(self, target: str) -> bool:
        """Whether ``target``'s steps are fenced (a sharded target), or free (host-bound)."""
        ...

    async def claim(
        self, action: Action, status: ActionStatus, *, now: float, incident: Incident | None = None
    ) -> ClaimResult:
        """Claim the action's key under the current epoch (writing ``incident``'s row first if it is missing)."""
        ...

    async def may_apply(self, action: Action, *, now: float) -> bool:
        """Whether the action may reach the actuator now (the lease is held, and not about to expire)."""
        ...

    async def adopt(self, action: Action, *, now: float) -> bool:
        """Take over a step another holder claimed but never applied (True: this one may apply it)."""
        ...

    def set_status(
        self,
        action: Action,
        status: ActionStatus,
        *,
        started_at: float | None = None,
        finished_at: float | None = None,
        detail: str | None = None,
    ) -> None:
        """Write a status change under the epoch the action was claimed with."""
        ...
