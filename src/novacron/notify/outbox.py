"""A bounded, durable queue of notifications waiting to be delivered.

:class:`Outbox` is the small protocol the deliverer needs (``put`` / ``pending`` /
``ack``). :class:`JsonlOutbox` keeps it in an append-only JSON-lines file: each ``put``
and ``ack`` is one line, flushed and fsync'ed before the call returns, so a notification
accepted before a crash or restart is delivered after it. On open the file is replayed;
a torn final line (the process died mid-write) is dropped, any other unreadable line is
an error rather than silent loss. The file is compacted when acknowledged records
dominate it, by writing the live items to a temporary file and renaming it over the old.
:class:`MemoryOutbox` has the same behaviour without the file, for tests and embedding.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from novacron.errors import PermanentError, TemporaryError
from novacron.notify.message import Notification

__all__ = [
    "JsonlOutbox",
    "MemoryOutbox",
    "Outbox",
    "OutboxCorruptError",
    "OutboxFullError",
    "OutboxItem",
]


class OutboxFullError(TemporaryError):
    """The outbox holds ``max_pending`` items; the caller must wait or shed load itself."""


class OutboxCorruptError(PermanentError):
    """A line in the outbox file (other than a torn last one) cannot be read."""


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """One queued delivery: which channel, what, and when it was queued."""

    id: str
    channel: str
    notification: Notification
    queued_at: float

    def to_json(self) -> dict[str, Any]:
        """JSON form stored in the outbox file."""
        return {
            "id": self.id,
            "channel": self.channel,
            "queued_at": self.queued_at,
            "notification": self.notification.to_json(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> OutboxItem:
        """Inverse of :meth:`to_json`."""
        return cls(
            id=str(data["id"]),
            channel=str(data["channel"]),
            queued_at=float(data["queued_at"]),
            notification=Notification.from_json(data["notification"]),
        )


class Outbox(Protocol):
    """Where notifications wait until a channel accepts them."""

    def put(self, channel: str, notification: Notification, *, now: float) -> OutboxItem:
        """Queue a notification; raises :class:`OutboxFullError` when the bound is reached."""
        ...

    def pending(self) -> list[OutboxItem]:
        """Items not yet acknowledged, oldest first."""
        ...

    def ack(self, item_id: str, *, delivered: bool = True, detail: str = "") -> None:
        """Remove an item: delivered, or given up on (``delivered=False``, kept as dead)."""
        ...


class MemoryOutbox:
    """An in-process outbox with the same bound and ordering as :class:`JsonlOutbox`."""

    def __init__(self, max_pending: int = 10_000, *, new_id: Callable[[], str] | None = None) -> None:
        if max_pending < 1:
            raise ValueError("max_pending must be at least 1")
        self.max_pending = max_pending
        self._items: dict[str, OutboxItem] = {}
        self._new_id = new_id or (lambda: uuid.uuid4().hex)
        self._lock = threading.Lock()
        self.dead: list[tuple[OutboxItem, str]] = []

    def put(self, channel: str, notification: Notification, *, now: float) -> OutboxItem:
        """Queue ``notification`` for ``channel``."""
        with self._lock:
            if len(self._items) >= self.max_pending:
                raise OutboxFullError(f"outbox full ({self.max_pending} pending)", delay=1.0)
            item = OutboxItem(self._new_id(), channel, notification, now)
            self._record_put(item)
            self._items[item.id] = item
            return item

    def pending(self) -> list[OutboxItem]:
        """Unacknowledged items in the order they were queued."""
        with self._lock:
            return list(self._items.values())

    def ack(self, item_id: str, *, delivered: bool = True, detail: str = "") -> None:
        """Drop the item; undelivered ones are remembered in :attr:`dead`. Unknown ids are ignored."""
        with self._lock:
            item = self._items.get(item_id)
            if item is None:
                return  # acked twice (e.g. redelivered after a restart): already done
            self._record_ack(item_id, delivered, detail)
            del self._items[item_id]
            if not delivered:
                self.dead.append((item, detail))

    def _record_put(self, item: OutboxItem) -> None:
        """Persistence hook: called under the lock before the item becomes visible."""

    def _record_ack(self, item_id: str, delivered: bool, detail: str) -> None:
        """Persistence hook: called under the lock before the item is removed."""


class JsonlOutbox(MemoryOutbox):
    """A :class:`MemoryOutbox` whose every change is appended to a JSON-lines file first."""

    def __init__(
        self,
        path: Path,
        max_pending: int = 10_000,
        *,
        fsync: bool = True,
        compact_after: int = 1000,
        new_id: Callable[[], str] | None = None,
    ) -> None:
        super().__init__(max_pending, new_id=new_id)
        self.path = path
        self._fsync = fsync
        self._compact_after = compact_after
        self._acked_lines = 0
        self._replay()
        self._file = path.open("a", encoding="utf-8")

    def close(self) -> None:
        """Close the file; the outbox must not be used afterwards."""
        self._file.close()

    def _replay(self) -> None:
        if not self.path.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return
        raw = self.path.read_text(encoding="utf-8")
        lines = raw.split("\n")
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                self._apply(json.loads(line))
            except (ValueError, KeyError, TypeError) as exc:
                torn = number == len(lines) and not raw.endswith("\n")
                if torn:
                    break  # the writer died mid-line; that record was never acknowledged to anyone
                raise OutboxCorruptError(f"{self.path}:{number}: unreadable outbox record ({exc})") from exc
        if raw and not raw.endswith("\n"):
            self._rewrite()  # drop the torn tail so new records start on a clean line

    def _apply(self, rec: dict[str, Any]) -> None:
        if rec["op"] == "put":
            item = OutboxItem.from_json(rec["item"])
            self._items[item.id] = item
        elif rec["op"] == "ack":
            gone = self._items.pop(str(rec["id"]), None)
            self._acked_lines += 1
            if gone is not None and not rec.get("delivered", True):
                self.dead.append((gone, str(rec.get("detail", ""))))
        else:
            raise KeyError(f"unknown op {rec['op']!r}")

    def _write(self, rec: dict[str, Any]) -> None:
        self._file.write(json.dumps(rec, separators=(",", ":")) + "\n")
        self._file.flush()
        if self._fsync:
            os.fsync(self._file.fileno())

    def _record_put(self, item: OutboxItem) -> None:
        self._write({"op": "put", "item": item.to_json()})

    def _record_ack(self, item_id: str, delivered: bool, detail: str) -> None:
        self._write({"op": "ack", "id": item_id, "delivered": delivered, "detail": detail})
        self._acked_lines += 1
        if self._acked_lines >= self._compact_after and self._acked_lines > len(self._items):
            self._file.close()
            # The item being acked is still in _items here; leave it out of the rewrite.
            self._rewrite(skip=item_id)
            self._file = self.path.open("a", encoding="utf-8")

    def _rewrite(self, skip: str | None = None) -> None:
        """Atomically replace the file with one ``put`` line per live item."""
        tmp = self.path.with_suffix(self.path.suffix + ".tmp")
        with tmp.open("w", encoding="utf-8") as f:
            for item in self._items.values():
                if item.id != skip:
                    f.write(json.dumps({"op": "put", "item": item.to_json()}, separators=(",", ":")) + "\n")
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(self.path)
        self._acked_lines = 0
