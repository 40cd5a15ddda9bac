"""The notification record every channel formats, and its JSON form for the outbox."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from novacron.errors import InputError
from novacron.model import EMPTY

__all__ = ["Event", "Notification", "Severity"]

Event = Literal["trigger", "acknowledge", "resolve"]
Severity = Literal["critical", "error", "warning", "info"]
_EVENTS: tuple[Event, ...] = ("trigger", "acknowledge", "resolve")
_SEVERITIES: tuple[Severity, ...] = ("critical", "error", "warning", "info")


@dataclass(frozen=True, slots=True)
class Notification:
    """One thing to tell humans about an incident.

    ``dedup_key`` ties trigger, acknowledge and resolve of the same incident together (it
    becomes PagerDuty's ``dedup_key``); ``time`` is seconds since the epoch. ``key``, when
    set, names this one message and stays the same across controller restarts: an outbox
    queues a key once per channel, and webhook receivers get it to drop a redelivery.
    """

    dedup_key: str
    event: Event
    summary: str
    source: str
    time: float
    severity: Severity = "error"
    details: Mapping[str, Any] = field(default_factory=lambda: EMPTY)
    links: tuple[tuple[str, str], ...] = ()  # (href, text)
    key: str = ""

    def __post_init__(self) -> None:
        if not self.dedup_key:
            raise InputError("must not be empty", where="dedup_key")
        if self.event not in _EVENTS:
            raise InputError(f"must be one of {', '.join(_EVENTS)}", where="event")
        if self.severity not in _SEVERITIES:
            raise InputError(f"must be one of {', '.join(_SEVERITIES)}", where="severity")

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable dict (the generic webhook body and the outbox record)."""
        return {
            "dedup_key": self.dedup_key,
            "event": self.event,
            "summary": self.summary,
            "source": self.source,
            "time": self.time,
            "severity": self.severity,
            "details": dict(self.details),
            "links": [{"href": href, "text": text} for href, text in self.links],
            "key": self.key,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Notification:
        """Rebuild a notification written by :meth:`to_json`."""
        try:
            return cls(
                dedup_key=str(data["dedup_key"]),
                event=data["event"],
                summary=str(data["summary"]),
                source=str(data["source"]),
                time=float(data["time"]),
                severity=data.get("severity", "error"),
                details=dict(data.get("details", {})),
                links=tuple((str(link["href"]), str(link.get("text", ""))) for link in data.get("links", [])),
                key=str(data.get("key", "")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"not a notification record: {exc}", where="notification") from exc
