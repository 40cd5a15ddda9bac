"""Delivering queued notifications: retries with capped, jittered backoff.

Everything goes through the :class:`~novacron.notify.outbox.Outbox` first, so a
notification survives a restart until a channel accepts it. Per channel, items are sent in
queue order (PagerDuty must see ``trigger`` before ``resolve``), and a channel that keeps
failing stops its pass without holding other channels up. Responses decide the policy:
2xx acknowledges; 408, 425, 429 and 5xx and network errors are retried (honouring
``Retry-After``, capped); other 4xx mean the request itself is wrong, so the item is
dead-lettered at once instead of retried forever. Items older than ``max_age_s`` are
dead-lettered too: a page about an incident from yesterday helps nobody.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import httpx

from novacron.clock import Clock, MonotonicClock
from novacron.errors import InputError
from novacron.notify.channels import Channel
from novacron.notify.message import Notification
from novacron.notify.outbox import Outbox, OutboxItem

__all__ = ["DeliveryReport", "Notifier", "RetryPolicy", "backoff_delay"]

_RETRYABLE_4XX = frozenset({408, 425, 429})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Backoff ``base_s·2^attempt`` capped at ``cap_s``, with ``jitter`` of it randomised."""

    base_s: float = 0.5
    cap_s: float = 60.0
    jitter: float = 0.5
    max_attempts: int = 6
    max_age_s: float = 86_400.0
    timeout_s: float = 10.0


def backoff_delay(attempt: int, policy: RetryPolicy, rng: random.Random) -> float:
    """Delay before retry number ``attempt`` (0-based): capped exponential, jittered downwards.

    Jitter only shortens the delay, so the cap holds, and spreads retries from many
    senders so a recovering receiver is not hit by all of them at once.
    """
    full = min(policy.cap_s, policy.base_s * 2.0 ** min(attempt, 62))
    return full * (1.0 - policy.jitter * rng.random())


@dataclass(slots=True)
class DeliveryReport:
    """What one :meth:`Notifier.drain` pass did."""

    delivered: int = 0
    dead: int = 0
    deferred: int = 0
    attempts: int = 0
    errors: list[str] = field(default_factory=list)


class _PermanentRefusalError(Exception):
    """The receiver refused the request itself; retrying cannot help."""


class Notifier:
    """Queues notifications in an outbox and delivers them through named channels."""

    def __init__(
        self,
        outbox: Outbox,
        channels: Mapping[str, Channel] | Sequence[Channel],
        *,
        policy: RetryPolicy | None = None,
        clock: Clock | None = None,
        client: httpx.AsyncClient | None = None,
        rng: random.Random | None = None,
    ) -> None:
        items = channels.values() if isinstance(channels, Mapping) else channels
        self.channels: dict[str, Channel] = {c.name: c for c in items}
        self.outbox = outbox
        self.policy = policy or RetryPolicy()
        self.clock = clock or MonotonicClock()
        self._client = client
        self._rng = rng or random.Random()
        self._wake = asyncio.Event()

    def notify(self, notification: Notification, channels: list[str] | None = None) -> list[OutboxItem]:
        """Queue ``notification`` for the named channels (default: all) and wake the sender."""
        names = list(self.channels) if channels is None else channels
        unknown = [n for n in names if n not in self.channels]
        if unknown:
            raise InputError(f"unknown channel(s): {', '.join(unknown)}", where="channels")
        now = self.clock.now()
        queued = [self.outbox.put(name, notification, now=now) for name in names]
        self._wake.set()
        return queued

    async def drain(self) -> DeliveryReport:
        """Try every pending item once (with in-place retries); channels run concurrently."""
        report = DeliveryReport()
        by_channel: dict[str, list[OutboxItem]] = {}
        for item in self.outbox.pending():
            by_channel.setdefault(item.channel, []).append(item)
        client = self._client or httpx.AsyncClient(timeout=self.policy.timeout_s)
        try:
            await asyncio.gather(
                *(self._drain_channel(client, name, items, report) for name, items in by_channel.items())
            )
        finally:
            if self._client is None:
                await client.aclose()
        return report

    async def run(self, stop: asyncio.Event, *, idle_s: float = 30.0) -> None:
        """Deliver until ``stop`` is set: drain, then wait for new items or ``idle_s`` to retry."""
        while not stop.is_set():
            self._wake.clear()
            await self.drain()
            waiters: list[asyncio.Future[object]] = [asyncio.ensure_future(e.wait()) for e in (stop, self._wake)]
            waiters.append(asyncio.ensure_future(self.clock.sleep(idle_s)))
            try:
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waiters:
                    w.cancel()

    async def _drain_channel(
        self, client: httpx.AsyncClient, name: str, items: list[OutboxItem], report: DeliveryReport
    ) -> None:
        channel = self.channels.get(name)
        for item in items:
            if channel is None:
                self._dead(item, f"channel {name!r} is not configured", report)
                continue
            if self.clock.now() - item.queued_at > self.policy.max_age_s:
                self._dead(item, f"older than {self.policy.max_age_s:g}s", report)
                continue
            if not await self._send_with_retries(client, channel, item, report):
                report.deferred += 1
                return  # keep queue order: later items for this channel wait for this one

    async def _send_with_retries(
        self, client: httpx.AsyncClient, channel: Channel, item: OutboxItem, report: DeliveryReport
    ) -> bool:
        """True when the item left the outbox (delivered or dead), False to retry later."""
        for attempt in range(self.policy.max_attempts):
            report.attempts += 1
            try:
                retry_after = await self._send(client, channel, item)
            except _PermanentRefusalError as exc:
                self._dead(item, str(exc), report)
                return True
            if retry_after is None:
                self.outbox.ack(item.id)
                report.delivered += 1
                return True
            report.errors.append(f"{channel.name}: {retry_after[1]}")
            if attempt + 1 < self.policy.max_attempts:
                delay = backoff_delay(attempt, self.policy, self._rng)
                if retry_after[0] is not None:
                    delay = min(self.policy.cap_s, max(delay, retry_after[0]))
                await self.clock.sleep(delay)
        return False

    async def _send(
        self, client: httpx.AsyncClient, channel: Channel, item: OutboxItem
    ) -> tuple[float | None, str] | None:
        """None on success; (retry-after seconds or None, reason) on a retryable failure."""
        req = channel.request(item.notification, self.clock.now())
        try:
            resp = await client.post(req.url, content=req.body, headers=req.headers)
        except httpx.HTTPError as exc:
            return (None, f"{type(exc).__name__}: {exc}")
        if resp.is_success:
            return None
        reason = f"HTTP {resp.status_code}: {resp.text[:200]}"
        if resp.status_code >= 500 or resp.status_code in _RETRYABLE_4XX:
            return _retry_after(resp.headers.get("Retry-After")), reason
        raise _PermanentRefusalError(reason)

    def _dead(self, item: OutboxItem, why: str, report: DeliveryReport) -> None:
        self.outbox.ack(item.id, delivered=False, detail=why)
        report.dead += 1
        report.errors.append(f"{item.channel}: gave up on {item.id}: {why}")


def _retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header given in seconds (HTTP dates are ignored)."""
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
