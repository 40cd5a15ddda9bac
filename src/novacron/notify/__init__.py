"""Notifications to humans: Slack, PagerDuty Events v2 and signed webhooks, delivered reliably.

An edge package (layer 3): it formats and sends, and imports nothing from incident
handling, which sits above it and decides *what* to tell *whom* (see
:mod:`novacron.incidents.escalation`).
"""

from novacron.notify.channels import (
    PAGERDUTY_EVENTS_URL,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    Channel,
    HttpRequest,
    PagerDutyChannel,
    SlackChannel,
    WebhookChannel,
    sign,
    verify_signature,
)
from novacron.notify.delivery import DeliveryReport, Notifier, RetryPolicy, backoff_delay
from novacron.notify.message import Event, Notification, Severity
from novacron.notify.outbox import (
    JsonlOutbox,
    MemoryOutbox,
    Outbox,
    OutboxCorruptError,
    OutboxFullError,
    OutboxItem,
)

__all__ = [
    "PAGERDUTY_EVENTS_URL",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "Channel",
    "DeliveryReport",
    "Event",
    "HttpRequest",
    "JsonlOutbox",
    "MemoryOutbox",
    "Notification",
    "Notifier",
    "Outbox",
    "OutboxCorruptError",
    "OutboxFullError",
    "OutboxItem",
    "PagerDutyChannel",
    "RetryPolicy",
    "Severity",
    "SlackChannel",
    "WebhookChannel",
    "backoff_delay",
    "sign",
    "verify_signature",
]
