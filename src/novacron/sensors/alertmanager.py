"""Alertmanager webhook intake (payload version 4): parsing and deduplication.

Alertmanager re-sends every active alert on each group interval and repeat interval, and
a retried webhook may arrive twice, so the same alert can arrive hundreds of times. Each
alert carries a ``fingerprint`` (a hash of its label set); together with ``startsAt`` it
identifies one firing *episode*. :class:`AlertDeduplicator` turns the stream into
``opened`` (once per episode, with a :class:`~novacron.model.Fault`), ``repeated`` and
``resolved`` signals. Fault ids are derived from fingerprint and start time, so even
after a restart (empty deduplicator) the same episode maps to the same fault id and the
store can still merge it. The HTTP endpoint that calls :func:`parse_webhook` lives in the
API; this module does no I/O.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from novacron.errors import InputError
from novacron.model import EMPTY, Fault, FaultId, FaultKind, TargetId

__all__ = [
    "DEFAULT_TARGET_LABELS",
    "AlertDeduplicator",
    "AlertEvent",
    "AlertSignal",
    "WebhookPayload",
    "parse_webhook",
]

DEFAULT_TARGET_LABELS: tuple[str, ...] = ("target", "job", "instance")
MAX_ALERTS = 10_000
_MAX_FINGERPRINT = 64  # Alertmanager's are 16 hex digits; anything longer is hashed


class _Alert(BaseModel):
    """One alert of the webhook payload (unknown keys are ignored for forward compatibility)."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    starts_at: AwareDatetime = Field(alias="startsAt")
    ends_at: AwareDatetime | None = Field(None, alias="endsAt")
    generator_url: str = Field("", alias="generatorURL")
    fingerprint: str = ""


class WebhookPayload(BaseModel):
    """Alertmanager's webhook body, version 4."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    version: Literal["4"]
    group_key: str = Field(alias="groupKey")
    truncated_alerts: int = Field(0, ge=0, alias="truncatedAlerts")
    status: Literal["firing", "resolved"]
    receiver: str
    group_labels: dict[str, str] = Field(default_factory=dict, alias="groupLabels")
    common_labels: dict[str, str] = Field(default_factory=dict, alias="commonLabels")
    common_annotations: dict[str, str] = Field(default_factory=dict, alias="commonAnnotations")
    external_url: str = Field("", alias="externalURL")
    alerts: list[_Alert] = Field(max_length=MAX_ALERTS)


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """One alert as received: identity, state, target and times (epoch seconds)."""

    fingerprint: str
    firing: bool
    target: TargetId
    name: str
    starts_at: float
    ends_at: float | None
    labels: Mapping[str, str] = field(default_factory=lambda: EMPTY)
    annotations: Mapping[str, str] = field(default_factory=lambda: EMPTY)
    generator_url: str = ""

    @property
    def fault_id(self) -> FaultId:
        """Stable id of this alert's episode."""
        return FaultId(f"alert:{_bounded(self.fingerprint, _MAX_FINGERPRINT)}:{self.starts_at:.3f}")

    def to_fault(self, detected_at: float) -> Fault:
        """The fault this alert raises (kind ALERT, evidence from labels and annotations)."""
        evidence: dict[str, Any] = {
            "alertname": self.name,
            "fingerprint": self.fingerprint,
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
        }
        if self.generator_url:
            evidence["generator_url"] = self.generator_url
        return Fault(
            id=self.fault_id,
            target=self.target,
            kind=FaultKind.ALERT,
            detected_at=detected_at,
            since=min(self.starts_at, detected_at),
            evidence=evidence,
        )


def _bounded(text: str, limit: int) -> str:
    """``text`` if it fits in ``limit`` characters, else a prefix and a hash of the whole (still unique)."""
    if len(text) <= limit:
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    return f"{text[: limit - len(digest) - 1]}~{digest}"


def _fingerprint(labels: Mapping[str, str]) -> str:
    """Fallback identity when a sender omits ``fingerprint``: a hash of the sorted label set."""
    text = json.dumps(sorted(labels.items()), separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _where(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "body"


def _validate(body: bytes | str | Mapping[str, Any]) -> WebhookPayload:
    try:
        if isinstance(body, bytes | str):
            return WebhookPayload.model_validate_json(body)
        return WebhookPayload.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        where = _where(first["loc"])
        if first["type"] == "json_invalid":
            where = "body"
        raise InputError(f"{first['msg']}{more}", where=where) from exc


def _target(labels: Mapping[str, str], target_labels: Sequence[str], i: int) -> TargetId:
    for key in target_labels:
        if labels.get(key):
            return TargetId(labels[key])
    if labels.get("alertname"):
        return TargetId(f"alert:{labels['alertname']}")
    raise InputError(f"no label among {', '.join(target_labels)} or alertname", where=f"alerts[{i}].labels")


def parse_webhook(
    body: bytes | str | Mapping[str, Any], *, target_labels: Sequence[str] = DEFAULT_TARGET_LABELS
) -> list[AlertEvent]:
    """Validate a v4 webhook body and return its alerts; bad input names the field.

    All alerts are checked before any is returned, so a bad payload is refused whole.
    """
    payload = _validate(body)
    events: list[AlertEvent] = []
    for i, alert in enumerate(payload.alerts):
        labels = {**payload.common_labels, **alert.labels}
        resolved = alert.status == "resolved"
        ends = alert.ends_at.timestamp() if alert.ends_at is not None else None
        events.append(
            AlertEvent(
                fingerprint=alert.fingerprint or _fingerprint(labels),
                firing=not resolved,
                target=_target(labels, target_labels, i),
                name=labels.get("alertname", ""),
                starts_at=alert.starts_at.timestamp(),
                # Alertmanager sends endsAt in the future (or year 1) for firing alerts.
                ends_at=ends if resolved else None,
                labels=labels,
                annotations={**payload.common_annotations, **alert.annotations},
                generator_url=alert.generator_url,
            )
        )
    return events


@dataclass(frozen=True, slots=True)
class AlertSignal:
    """What one received alert means: a new episode, a repeat, or a resolution.

    ``fault`` is set for ``opened``; for ``resolved`` it is the episode's fault id via
    ``fault_id`` (known even if this process never saw the episode open).
    """

    kind: Literal["opened", "repeated", "resolved"]
    event: AlertEvent
    fault: Fault | None = None
    count: int = 1

    @property
    def fault_id(self) -> FaultId:
        """The episode's fault id."""
        return self.event.fault_id


@dataclass(slots=True)
class _Episode:
    starts_at: float
    last_seen: float
    count: int = 1


class AlertDeduplicator:
    """Folds repeated alerts into episodes keyed by fingerprint; bounded in memory.

    Episodes not seen for ``stale_after_s`` are forgotten (Alertmanager re-sends active
    alerts every ``repeat_interval``, 4 h by default, so a day is safe); at most
    ``max_episodes`` are tracked, the least recently seen evicted first. Resolutions are
    remembered for ``stale_after_s`` too, so a late duplicate of the firing notification
    does not reopen a closed episode.
    """

    def __init__(self, *, stale_after_s: float = 86_400.0, max_episodes: int = 100_000) -> None:
        self.stale_after_s = stale_after_s
        self.max_episodes = max_episodes
        self._open: OrderedDict[str, _Episode] = OrderedDict()
        self._closed: OrderedDict[tuple[str, float], float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._open)

    def observe(self, event: AlertEvent, now: float) -> AlertSignal | None:
        """Fold one alert in; ``None`` means a stale duplicate of a closed episode."""
        self._expire(now)
        key = event.fingerprint
        ep = self._open.get(key)
        if not event.firing:
            if ep is not None and ep.starts_at != event.starts_at:
                return AlertSignal("repeated", event, count=ep.count)  # resolution of an older episode
            self._open.pop(key, None)
            self._remember_closed(key, event.starts_at, now)
            return AlertSignal("resolved", event, count=ep.count if ep else 0)
        if (key, event.starts_at) in self._closed:
            return None
        if ep is not None and ep.starts_at == event.starts_at:
            ep.count += 1
            ep.last_seen = now
            self._open.move_to_end(key)
            return AlertSignal("repeated", event, count=ep.count)
        # New fingerprint, or the same labels firing again with a new start: a new episode.
        self._open[key] = _Episode(starts_at=event.starts_at, last_seen=now)
        self._open.move_to_end(key)
        while len(self._open) > self.max_episodes:
            self._open.popitem(last=False)
        return AlertSignal("opened", event, fault=event.to_fault(now))

    def observe_all(self, events: Sequence[AlertEvent], now: float) -> Iterator[AlertSignal]:
        """:meth:`observe` each event, skipping stale duplicates."""
        for event in events:
            signal = self.observe(event, now)
            if signal is not None:
                yield signal

    def _remember_closed(self, key: str, starts_at: float, now: float) -> None:
        self._closed[(key, starts_at)] = now
        self._closed.move_to_end((key, starts_at))
        while len(self._closed) > self.max_episodes:
            self._closed.popitem(last=False)

    def _expire(self, now: float) -> None:
        cutoff = now - self.stale_after_s
        while self._open and next(iter(self._open.values())).last_seen < cutoff:
            self._open.popitem(last=False)
        while self._closed and next(iter(self._closed.values())) < cutoff:
            self._closed.popitem(last=False)
