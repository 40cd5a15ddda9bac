"""The safety gate's persisted state: one row per target and rail.

Rails (``quarantine``, ``rate_limit``, ``backoff``, ``flap``) are written as they change,
so a controller that is killed and restarted — even in a loop — finds every quarantine,
rate-limit window and backoff where the previous one left it. Times are wall-clock
seconds; the gate converts them to its own monotonic clock on load.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select

from novacron.store import tables as t
from novacron.store.repo import Store

__all__ = ["BACKOFF", "FLAP", "QUARANTINE", "RATE_LIMIT", "RailRepository", "RailRow"]

# Rail names as stored.
QUARANTINE = "quarantine"  # until: when it ends
RATE_LIMIT = "rate_limit"  # data.at: automated actions within the last hour
FLAP = "flap"  # data.at: incidents within the flap window
BACKOFF = "backoff"  # until: not before; data.attempts: consecutive actions


@dataclass(frozen=True, slots=True)
class RailRow:
    """One rail's state for one target: an end time (if it has one) and rail-specific data."""

    target: str
    rail: str
    until: float | None
    data: Mapping[str, Any]
    updated_at: float


class RailRepository:
    """Reads and writes ``safety_rails`` through the store's transactions."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def put(self, target: str, rail: str, *, data: Mapping[str, Any], until: float | None, now: float) -> None:
        """Replace one target's rail state."""
        values = {"target": target, "rail": rail, "until": until, "data": dict(data), "updated_at": now}
        self._store._upsert(t.safety_rails, values)

    def drop(self, target: str, rail: str | None = None) -> None:
        """Forget one rail of a target (or all of them)."""
        where = t.safety_rails.c.target == target
        if rail is not None:
            where = where & (t.safety_rails.c.rail == rail)
        self._store._exec(delete(t.safety_rails).where(where))

    def rows(self, rail: str | None = None) -> list[RailRow]:
        """Every stored rail state (of one rail, if named)."""
        stmt = select(t.safety_rails).order_by(t.safety_rails.c.target)
        if rail is not None:
            stmt = stmt.where(t.safety_rails.c.rail == rail)
        return [RailRow(**r) for r in self._store._rows(stmt)]
