"""Paging state: each incident's escalation progress and the notification outbox.

Both are rows so that a restarted controller neither pages twice nor loses a message:
an escalation remembers which pages went out and when a human acknowledged; the outbox
keeps every message until its channel took it (``delivered``) or it was given up
(``dead``, with the reason).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from novacron.store import tables as t
from novacron.store.repo import Store

__all__ = ["EscalationRow", "OutboxRow", "PagingRepository"]


@dataclass(frozen=True, slots=True)
class EscalationRow:
    """One incident's escalation: its policy, start, pages sent, receivers paged, acknowledgement."""

    incident_id: str
    policy: str
    started_at: float
    sent: tuple[str, ...]
    paged: tuple[str, ...]
    acked_at: float | None


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """One queued message for one channel."""

    id: str
    channel: str
    queued_at: float
    notification: Mapping[str, Any]
    state: str
    detail: str = ""


class PagingRepository:
    """Reads and writes ``escalations`` and ``outbox``."""

    def __init__(self, store: Store) -> None:
        self._store = store

    # -- escalations -------------------------------------------------------------------
    def save_escalation(self, row: EscalationRow, *, now: float) -> None:
        """Insert or replace an incident's escalation state."""
        values = {
            "incident_id": row.incident_id,
            "policy": row.policy,
            "started_at": row.started_at,
            "sent": sorted(row.sent),
            "paged": sorted(row.paged),
            "acked_at": row.acked_at,
            "updated_at": now,
        }
        self._store._upsert(t.escalations, values)

    def drop_escalation(self, incident_id: str) -> None:
        """Forget an incident's escalation (it was resolved)."""
        self._store._exec(delete(t.escalations).where(t.escalations.c.incident_id == incident_id))

    def escalations(self) -> list[EscalationRow]:
        """Every escalation still in progress."""
        rows = self._store._rows(select(t.escalations))
        return [
            EscalationRow(
                r["incident_id"], r["policy"], r["started_at"], tuple(r["sent"]), tuple(r["paged"]), r["acked_at"]
            )
            for r in rows
        ]

    # -- outbox ------------------------------------------------------------------------
    def enqueue(
        self, channel: str, notification: Mapping[str, Any], *, now: float, item_id: str | None = None
    ) -> OutboxRow:
        """Queue a message for a channel (committed before the call returns).

        With ``item_id`` the message is queued at most once: a message already stored under
        that id (pending, delivered or dead) is returned as it is, not queued again.
        """
        if item_id is not None and (known := self._message(item_id)) is not None:
            return known
        row = OutboxRow(item_id or uuid.uuid4().hex, channel, now, dict(notification), "pending")
        try:
            self._store._exec(
                t.outbox.insert().values(
                    id=row.id, channel=channel, queued_at=now, notification=row.notification, state="pending", detail=""
                )
            )
        except IntegrityError:  # another writer queued the same message first
            known = None if item_id is None else self._message(item_id)
            if known is None:
                raise
            return known
        return row

    def _message(self, item_id: str) -> OutboxRow | None:
        rows = self._store._rows(select(t.outbox).where(t.outbox.c.id == item_id))
        return _outbox_row(rows[0]) if rows else None

    def pending(self) -> list[OutboxRow]:
        """Messages not yet taken by their channel, oldest first."""
        stmt = select(t.outbox).where(t.outbox.c.state == "pending").order_by(t.outbox.c.queued_at, t.outbox.c.id)
        return [_outbox_row(r) for r in self._store._rows(stmt)]

    def finish(self, item_id: str, *, delivered: bool, detail: str, now: float) -> None:
        """Mark a message delivered, or dead with the reason it was given up."""
        state = "delivered" if delivered else "dead"
        stmt = update(t.outbox).where(t.outbox.c.id == item_id).values(state=state, detail=detail, done_at=now)
        self._store._exec(stmt)

    def messages(self, *, channel: str | None = None, limit: int = 200) -> list[OutboxRow]:
        """Messages of any state, newest first (what was sent, for operators and tests)."""
        stmt = select(t.outbox).order_by(t.outbox.c.queued_at.desc()).limit(limit)
        if channel is not None:
            stmt = stmt.where(t.outbox.c.channel == channel)
        return [_outbox_row(r) for r in self._store._rows(stmt)]


def _outbox_row(r: Mapping[str, Any]) -> OutboxRow:
    return OutboxRow(r["id"], r["channel"], r["queued_at"], r["notification"], r["state"], r["detail"])
