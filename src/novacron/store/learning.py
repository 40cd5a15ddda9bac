"""The learning tables: logged decisions, operator feedback, stored policy versions.

A decision is written when a policy chooses a step (before it runs) and completed with its
reward when the step ends, so a controller that dies in between leaves an honest row
without a reward rather than none. Feedback names an action; it is kept in its own table
(an operator's mark is never lost, even on an action no policy chose) and folded into the
decision behind that action, if any.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from novacron.errors import NotFoundError, StoreError
from novacron.store import tables as t
from novacron.store.repo import Store

__all__ = ["POLICY_IN_USE_KEY", "DecisionRow", "Feedback", "PolicyLog", "StoredPolicy"]

POLICY_IN_USE_KEY = "learning.policy_in_use"  # controller setting: which policy acts, and why

VERDICTS = ("good", "bad")


@dataclass(frozen=True, slots=True)
class DecisionRow:
    """One logged decision."""

    id: str
    at: float
    policy: str
    target: str
    incident_id: str | None
    action_id: str | None
    action: str
    context: dict[str, Any]
    allowed: list[str]
    propensity: float
    explored: bool
    reward: float | None
    outcome: str | None


@dataclass(frozen=True, slots=True)
class Feedback:
    """An operator's mark on an action."""

    action_id: str
    at: float
    actor: str
    verdict: str
    note: str


@dataclass(frozen=True, slots=True)
class StoredPolicy:
    """One version of a named policy."""

    name: str
    version: int
    created_at: float
    source: str
    body: dict[str, Any]
    promoted: bool


class PolicyLog:
    """Repository over the learning tables of one :class:`Store`."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def _exec(self, stmt: Any) -> Any:
        try:
            with self.store.engine.begin() as conn:
                return conn.execute(stmt)
        except SQLAlchemyError as exc:
            raise StoreError(f"store write failed: {exc}", delay=0.5) from exc

    def _rows(self, stmt: Any) -> list[Mapping[str, Any]]:
        try:
            with self.store.engine.connect() as conn:
                return [dict(r._mapping) for r in conn.execute(stmt)]
        except SQLAlchemyError as exc:
            raise StoreError(f"store read failed: {exc}", delay=0.5) from exc

    # -- decisions ---------------------------------------------------------------------
    def record_decision(
        self,
        *,
        at: float,
        policy: str,
        target: str,
        incident_id: str | None,
        action_id: str | None,
        action: str,
        context: Mapping[str, Any],
        allowed: list[str],
        propensity: float,
        explored: bool,
    ) -> str:
        """Log a decision as it is made; returns its id."""
        decision_id = f"dec-{uuid.uuid4().hex[:12]}"
        self._exec(
            insert(t.policy_decisions).values(
                id=decision_id,
                at=at,
                policy=policy,
                target=target,
                incident_id=incident_id,
                action_id=action_id,
                action=action,
                context=dict(context),
                allowed=list(allowed),
                propensity=propensity,
                explored=explored,
            )
        )
        return decision_id

    def settle(self, decision_id: str, *, reward: float, outcome: str) -> None:
        """Complete a decision with the reward and outcome of its step."""
        stmt = update(t.policy_decisions).where(t.policy_decisions.c.id == decision_id)
        self._exec(stmt.values(reward=reward, outcome=outcome))

    def decisions(self, *, limit: int = 10_000, settled: bool = False, newest: bool = False) -> list[DecisionRow]:
        """Decisions, oldest first (only those with a reward when ``settled``; the last ``limit`` when ``newest``)."""
        order = t.policy_decisions.c.at.desc() if newest else t.policy_decisions.c.at
        stmt = select(t.policy_decisions).order_by(order).limit(limit)
        if settled:
            stmt = stmt.where(t.policy_decisions.c.reward.is_not(None))
        rows = [DecisionRow(**r) for r in self._rows(stmt)]
        return rows[::-1] if newest else rows

    def decision_for_action(self, action_id: str) -> DecisionRow | None:
        """The decision that chose ``action_id``, if a policy chose it."""
        rows = self._rows(select(t.policy_decisions).where(t.policy_decisions.c.action_id == action_id))
        return DecisionRow(**rows[0]) if rows else None

    # -- feedback ----------------------------------------------------------------------
    def add_feedback(self, action_id: str, verdict: str, *, actor: str, note: str, now: float) -> Feedback:
        """Keep an operator's mark on an existing action (NotFoundError for an unknown one)."""
        self.store.action(action_id)  # raises NotFoundError naming the action
        fb = Feedback(action_id, now, actor, verdict, note)
        self._exec(
            insert(t.policy_feedback).values(action_id=action_id, at=now, actor=actor, verdict=verdict, note=note)
        )
        return fb

    def feedback(self, action_id: str | None = None) -> list[Feedback]:
        """Feedback, oldest first (for one action, or all)."""
        stmt = select(t.policy_feedback).order_by(t.policy_feedback.c.id)
        if action_id is not None:
            stmt = stmt.where(t.policy_feedback.c.action_id == action_id)
        return [Feedback(r["action_id"], r["at"], r["actor"], r["verdict"], r["note"]) for r in self._rows(stmt)]

    # -- policy versions ---------------------------------------------------------------
    def save_policy(self, name: str, body: Mapping[str, Any], *, source: str, now: float, promote: bool) -> int:
        """Keep a new version of ``name``; returns its number."""
        rows = self._rows(select(func.max(t.policy_versions.c.version)).where(t.policy_versions.c.name == name))
        version = int(rows[0][next(iter(rows[0]))] or 0) + 1 if rows else 1
        self._exec(
            insert(t.policy_versions).values(
                name=name, version=version, created_at=now, source=source, body=dict(body), promoted=promote
            )
        )
        return version

    def latest_policy(self, name: str, *, promoted_only: bool = True) -> StoredPolicy | None:
        """The newest (promoted) version of ``name``."""
        stmt = select(t.policy_versions).where(t.policy_versions.c.name == name)
        if promoted_only:
            stmt = stmt.where(t.policy_versions.c.promoted.is_(True))
        rows = self._rows(stmt.order_by(t.policy_versions.c.version.desc()).limit(1))
        if not rows:
            return None
        r = rows[0]
        return StoredPolicy(r["name"], r["version"], r["created_at"], r["source"], r["body"], r["promoted"])

    def policy(self, name: str, version: int) -> StoredPolicy:
        """One stored version (NotFoundError when absent)."""
        stmt = select(t.policy_versions).where(
            (t.policy_versions.c.name == name) & (t.policy_versions.c.version == version)
        )
        rows = self._rows(stmt)
        if not rows:
            raise NotFoundError(f"no policy {name!r} version {version}")
        r = rows[0]
        return StoredPolicy(r["name"], r["version"], r["created_at"], r["source"], r["body"], r["promoted"])
