"""Channel formats: Slack incoming webhooks, PagerDuty Events API v2, signed generic webhooks.

A channel only turns a :class:`Notification` into an HTTP request; sending, retrying and
queueing live in :mod:`novacron.notify.delivery`, so formats are pure and easy to test.
The generic webhook is signed with HMAC-SHA256 over the raw body, sent as
``X-Novacron-Signature: sha256=<hex>``. The body carries its send time (``sent_at``, also
in ``X-Novacron-Timestamp``), so the signature covers it; receivers verify with
:func:`verify_signature`, which also refuses stale bodies (replays).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from dataclasses import dataclass, field
from typing import Any, Protocol

from novacron.notify.message import Notification

__all__ = [
    "PAGERDUTY_EVENTS_URL",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "Channel",
    "HttpRequest",
    "PagerDutyChannel",
    "SlackChannel",
    "WebhookChannel",
    "sign",
    "verify_signature",
]

PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
TIMESTAMP_HEADER = "X-Novacron-Timestamp"
SIGNATURE_HEADER = "X-Novacron-Signature"
_JSON = {"Content-Type": "application/json"}


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """A POST to make: where, with which headers and body."""

    url: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


class Channel(Protocol):
    """Formats notifications for one destination."""

    @property
    def name(self) -> str:
        """Unique channel name (the outbox stores it with each item)."""
        ...

    def request(self, notification: Notification, now: float) -> HttpRequest:
        """The HTTP request that delivers ``notification`` at time ``now``."""
        ...


def _dumps(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


_SLACK_ICON = {"trigger": ":rotating_light:", "acknowledge": ":eyes:", "resolve": ":white_check_mark:"}


@dataclass(frozen=True, slots=True)
class SlackChannel:
    """Slack incoming webhook: ``text`` (fallback) plus Block Kit blocks."""

    name: str
    url: str

    def request(self, notification: Notification, now: float) -> HttpRequest:
        """Slack's JSON body for one notification."""
        n = notification
        head = f"{_SLACK_ICON[n.event]} [{n.severity.upper()}] {n.event}: {n.summary}"
        fields = [{"type": "mrkdwn", "text": f"*{k}*\n{v}"} for k, v in sorted(n.details.items())][:10]
        blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": head}}]
        if fields:
            blocks.append({"type": "section", "fields": fields})
        context = f"source `{n.source}` · key `{n.dedup_key}`"
        context += "".join(f" · <{href}|{text or href}>" for href, text in n.links)
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]})
        return HttpRequest(self.url, _dumps({"text": head, "blocks": blocks}), dict(_JSON))


@dataclass(frozen=True, slots=True)
class PagerDutyChannel:
    """PagerDuty Events API v2; the notification's ``dedup_key`` links trigger/ack/resolve."""

    name: str
    routing_key: str
    url: str = PAGERDUTY_EVENTS_URL
    client_name: str = "NovaCron"

    def request(self, notification: Notification, now: float) -> HttpRequest:
        """The Events v2 body; ``payload`` is only sent with ``trigger``, as the API expects."""
        n = notification
        body: dict[str, Any] = {
            "routing_key": self.routing_key,
            "event_action": n.event,
            "dedup_key": n.dedup_key,
        }
        if n.event == "trigger":
            body["payload"] = {
                "summary": n.summary[:1024],  # the API's limit
                "source": n.source,
                "severity": n.severity,
                "timestamp": _iso(n.time),
                "custom_details": dict(n.details),
            }
            body["client"] = self.client_name
            if n.links:
                body["links"] = [{"href": href, "text": text} for href, text in n.links]
        return HttpRequest(self.url, _dumps(body), dict(_JSON))


def _iso(t: float) -> str:
    return dt.datetime.fromtimestamp(t, tz=dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def sign(secret: bytes, body: bytes) -> str:
    """``sha256=<hex>`` of HMAC-SHA256(secret, body): what ``X-Novacron-Signature`` carries."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify_signature(secret: bytes, body: bytes, signature: str, *, now: float, tolerance_s: float = 300.0) -> bool:
    """Whether ``signature`` is valid for the raw ``body`` and its ``sent_at`` is within tolerance of ``now``."""
    if not hmac.compare_digest(sign(secret, body), signature):
        return False
    try:
        sent_at = float(json.loads(body)["sent_at"])
    except (ValueError, KeyError, TypeError):
        return False
    return abs(now - sent_at) <= tolerance_s


@dataclass(frozen=True, slots=True)
class WebhookChannel:
    """A generic JSON webhook, signed so the receiver can trust it."""

    name: str
    url: str
    secret: bytes = field(repr=False)

    def request(self, notification: Notification, now: float) -> HttpRequest:
        """The notification as JSON with fresh timestamp and signature headers."""
        ts = int(now)
        body = _dumps({**notification.to_json(), "sent_at": ts})
        headers = {**_JSON, TIMESTAMP_HEADER: str(ts), SIGNATURE_HEADER: sign(self.secret, body)}
        return HttpRequest(self.url, body, headers)
