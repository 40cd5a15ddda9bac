"""Paging inside the controller: escalation policies over a durable outbox.

:class:`Pager` listens to incident timelines. An incident that a policy covers (its
priority, or needs-human) is paged on that policy's schedule and paged again until a
human acknowledges it; its resolution is sent to everyone who was paged. Every message
goes through the :class:`StoreOutbox` first and carries the incident id as its dedup
key, and every page is written on the incident's timeline. Escalation progress is kept in
the store, so a restarted controller neither pages twice nor forgets whom to tell.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from novacron.clock import Clock
from novacron.errors import ConfigError, StoreError
from novacron.incidents.escalation import EscalationState, Escalator, applies
from novacron.model import ENDING_EVENTS, Incident, TimelineEvent
from novacron.notify import (
    PAGERDUTY_EVENTS_URL,
    Channel,
    Notification,
    Notifier,
    OutboxItem,
    PagerDutyChannel,
    RetryPolicy,
    SlackChannel,
    WebhookChannel,
)
from novacron.settings import ChannelSpec, EscalationPolicy
from novacron.store import Store
from novacron.store.paging import EscalationRow, PagingRepository
from novacron.telemetry import get_logger

__all__ = ["Pager", "StoreOutbox", "build_channels"]

# Events that the pager itself writes, or that change nothing about who to page.
_QUIET = frozenset({"paged", "page_acknowledged", "page_resolved", "signal"})
DELIVERY = RetryPolicy(base_s=0.5, cap_s=30.0, jitter=0.5, max_attempts=4, timeout_s=5.0)

Record = Callable[..., None]


def build_channels(specs: list[ChannelSpec], environ: Mapping[str, str]) -> list[Channel]:
    """Channels from the spec's ``notify:`` block, their secrets read from ``environ``.

    A secret that is not set is a :class:`ConfigError` naming the channel's field, so
    ``novacron validate`` and ``run`` refuse the spec before anything starts.
    """
    out: list[Channel] = []
    for i, spec in enumerate(specs):
        secret = _secret(spec, environ, f"notify[{i}].secret_env")
        if spec.type == "webhook":
            assert spec.url is not None  # the spec requires url and secret_env
            assert secret is not None
            out.append(WebhookChannel(spec.name, spec.url, secret.encode()))
        elif spec.type == "slack":
            url = spec.url if secret is None else secret
            assert url is not None
            out.append(SlackChannel(spec.name, url))
        else:
            assert secret is not None
            url = spec.url or PAGERDUTY_EVENTS_URL
            out.append(PagerDutyChannel(spec.name, secret, url))
    return out


def _secret(spec: ChannelSpec, environ: Mapping[str, str], where: str) -> str | None:
    if spec.secret_env is None:
        return None
    value = environ.get(spec.secret_env, "")
    if not value:
        raise ConfigError(f"environment variable {spec.secret_env} is not set (channel {spec.name!r})", where=where)
    return value


def _item_id(channel: str, key: str) -> str:
    """The outbox id of message ``key`` for ``channel``: the same in every run of the controller."""
    return hashlib.sha256(f"{channel}\n{key}".encode()).hexdigest()[:32]


class StoreOutbox:
    """The notifier's outbox in the store: a message survives any restart until delivered."""

    def __init__(self, repo: PagingRepository, clock: Clock) -> None:
        self._repo = repo
        self._clock = clock

    def put(self, channel: str, notification: Notification, *, now: float) -> OutboxItem:
        """Queue ``notification`` for ``channel``; a keyed message already queued is not queued again."""
        item_id = _item_id(channel, notification.key) if notification.key else None
        row = self._repo.enqueue(channel, notification.to_json(), now=now, item_id=item_id)
        return OutboxItem(row.id, channel, notification, row.queued_at)

    def pending(self) -> list[OutboxItem]:
        """Messages not yet taken, oldest first."""
        return [
            OutboxItem(r.id, r.channel, Notification.from_json(r.notification), r.queued_at)
            for r in self._repo.pending()
        ]

    def ack(self, item_id: str, *, delivered: bool = True, detail: str = "") -> None:
        """Delivered, or given up on (kept as dead with ``detail``)."""
        self._repo.finish(item_id, delivered=delivered, detail=detail, now=self._clock.now())


class Pager:
    """Runs the spec's escalation policies for every open incident."""

    def __init__(
        self,
        *,
        policies: list[EscalationPolicy],
        channels: Sequence[Channel],
        store: Store,
        clock: Clock,
        record: Record,
    ) -> None:
        """``record(incident, kind, detail, **data)`` writes a line on an incident's timeline."""
        self._repo = PagingRepository(store)
        self._clock = clock
        self._record = record
        self.notifier = Notifier(StoreOutbox(self._repo, clock), channels, policy=DELIVERY, clock=clock)
        self._escalators: dict[str, Escalator] = {}
        for i, policy in enumerate(policies):
            try:
                self._escalators[policy.name] = Escalator(policy, self.notifier)
            except ConfigError as exc:
                raise ConfigError(exc.reason, where=f"escalation[{i}].{exc.where}") from exc
        self._policy_of: dict[str, str] = {}
        self._store = store
        self._acked: dict[str, tuple[float, str]] = {}  # acknowledged before any policy paged for them
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._log = get_logger(component="pager")

    # -- lifecycle ---------------------------------------------------------------------
    def restore(self) -> None:
        """Reload escalations in progress (controller start)."""
        for row in self._repo.escalations():
            escalator = self._escalators.get(row.policy)
            if escalator is None:
                continue  # the policy left the spec: nobody to page on its behalf
            self._policy_of[row.incident_id] = row.policy
            state = EscalationState(row.started_at, frozenset(row.sent), frozenset(row.paged), row.acked_at)
            escalator.restore(row.incident_id, state)

    def start(self) -> None:
        """Start delivering the outbox (what a previous controller left in it first)."""
        self._stop.clear()
        self._task = asyncio.get_running_loop().create_task(self.notifier.run(self._stop, idle_s=5.0), name="pager")

    async def stop(self) -> None:
        """Stop delivering; undelivered messages stay in the outbox."""
        self._stop.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    # -- events ------------------------------------------------------------------------
    def on_event(self, incident: Incident, event: TimelineEvent) -> None:
        """An incident's timeline moved: page, stop paging, or tell the paged it is over.

        A store that fails now loses no page: the schedule is re-polled on every tick.
        """
        if event.kind in _QUIET:
            return
        try:
            self._on_event(incident, event)
        except StoreError as exc:
            self._log.warning("paging deferred: the store failed", incident=incident.id, error=str(exc))

    def tick(self, incidents: list[Incident]) -> None:
        """Send the pages that fell due (called twice a second).

        Every open incident is polled, not only those already paged: one that called for a
        human just before a restart is paged by the schedule, not by its next event.
        """
        try:
            for incident in incidents:
                self.poll(incident)
        except StoreError as exc:
            self._log.warning("paging deferred: the store failed", error=str(exc))

    def _on_event(self, incident: Incident, event: TimelineEvent) -> None:
        if event.kind == "acknowledged":
            self.acknowledge(incident, by=str(event.data.get("by", "")))
        elif event.kind in ENDING_EVENTS:
            self._resolve(incident)
        else:
            self.poll(incident)

    def poll(self, incident: Incident) -> None:
        """Page whatever of ``incident``'s escalation is due now."""
        escalator = self._escalator_for(incident)
        if escalator is None:
            return
        now = self._clock.now()
        new = escalator.state(incident.id) is None
        pages = escalator.poll(incident, now)
        started = new and escalator.state(incident.id) is not None
        if not pages and not started:
            return
        self._save(incident.id, escalator)  # a schedule's start too: a restart before its first page keeps it
        for page in pages:
            self._record(
                incident,
                "paged",
                f"paged {', '.join(page.receivers)} (policy {escalator.policy.name}, level {page.level + 1}, "
                f"{'first page' if page.repeat == 0 else f'repeat {page.repeat}'})",
                channels=list(page.receivers),
                policy=escalator.policy.name,
                level=page.level,
                repeat=page.repeat,
            )

    def acknowledge(self, incident: Incident, *, by: str) -> None:
        """A human owns the incident: no more pages; those already paged are told."""
        name = self._policy_of.get(incident.id)
        if name is None:  # no policy pages for it (yet): one that starts to later must not
            self._acked[incident.id] = (self._clock.now(), by)
            return
        escalator = self._escalators[name]
        told = escalator.acknowledge(incident, self._clock.now(), by)
        self._save(incident.id, escalator)
        if told:
            self._record(incident, "page_acknowledged", f"paging stopped; told {', '.join(told)}", channels=told)

    def _resolve(self, incident: Incident) -> None:
        self._acked.pop(incident.id, None)
        name = self._policy_of.pop(incident.id, None)
        if name is None:
            return
        told = self._escalators[name].resolve(incident, self._clock.now())
        self._repo.drop_escalation(incident.id)
        if told:
            self._record(incident, "page_resolved", f"resolution sent to {', '.join(told)}", channels=told)

    def _escalator_for(self, incident: Incident) -> Escalator | None:
        name = self._policy_of.get(incident.id)
        if name is not None:
            return self._escalators[name]
        for name, escalator in self._escalators.items():
            if applies(escalator.policy, incident):
                self._policy_of[incident.id] = name
                acked = self._acked_before(incident.id)
                if acked is not None:  # a human owned it before it called for one
                    escalator.acknowledge(incident, acked[0], acked[1])
                    self._save(incident.id, escalator)
                return escalator
        return None

    def _acked_before(self, incident_id: str) -> tuple[float, str] | None:
        """When and by whom an incident was acknowledged, if it was (this run, or the timeline)."""
        if incident_id in self._acked:
            return self._acked.pop(incident_id)
        for event in self._store.timeline(incident_id):  # acknowledged under an earlier controller
            if event.kind == "acknowledged":
                return event.time, str(event.data.get("by", ""))
        return None

    def _save(self, incident_id: str, escalator: Escalator) -> None:
        state = escalator.state(incident_id)
        if state is None:
            return
        row = EscalationRow(
            incident_id, escalator.policy.name, state.started_at, tuple(state.sent), tuple(state.paged), state.acked_at
        )
        self._repo.save_escalation(row, now=self._clock.now())

    def data(self) -> dict[str, Any]:
        """Channels and policies in force (for status and logs)."""
        return {"channels": sorted(self.notifier.channels), "policies": list(self._escalators)}
