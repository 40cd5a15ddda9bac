"""The outbox in the store: a page for a channel that is down waits, survives a restart, and is delivered."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

from novacron.clock import FakeClock, MonotonicClock
from novacron.demo.fleet import free_port_block
from novacron.incidents.escalation import parse_policy
from novacron.incidents.paging import DELIVERY, Pager, StoreOutbox
from novacron.model import FaultKind, Incident, IncidentId, IncidentStatus, Priority, TargetId, TimelineEvent
from novacron.notify import Notification, Notifier, RetryPolicy, SlackChannel, WebhookChannel, verify_signature
from novacron.store import Store
from novacron.store.paging import PagingRepository
from tests.incidents.loopback_receiver import start_receiver, stop_receiver

KEY = b"k" * 16
FAST = RetryPolicy(base_s=0.01, cap_s=0.05, jitter=0.5, max_attempts=2, timeout_s=1.0)


def _page() -> Notification:
    return Notification("novacron-inc-1", "trigger", "crash on web", "web", time.time(), details={"incident": "inc-1"})


async def test_a_page_for_a_down_channel_survives_a_restart_and_is_delivered(tmp_path: Path) -> None:
    port = free_port_block(1)
    url = f"sqlite:///{tmp_path / 'n.db'}"
    store = Store.open(url)
    clock = MonotonicClock()
    down = Notifier(
        StoreOutbox(PagingRepository(store), clock),
        [WebhookChannel("ops", f"http://127.0.0.1:{port}/h", KEY)],
        policy=FAST,
        clock=clock,
    )
    down.notify(_page())
    report = await down.drain()
    assert (report.delivered, report.deferred) == (0, 1)  # refused: kept, not lost
    store.close()

    rx = start_receiver(port)  # the channel comes back; a new controller opens the store
    try:
        store = Store.open(url)
        repo = PagingRepository(store)
        assert [r.channel for r in repo.pending()] == ["ops"]
        up = Notifier(
            StoreOutbox(repo, clock), [WebhookChannel("ops", rx.url + "/h", KEY)], policy=DELIVERY, clock=clock
        )
        assert (await up.drain()).delivered == 1
        assert repo.pending() == []
        assert [r.state for r in repo.messages()] == ["delivered"]
        [req] = rx.requests
        assert json.loads(req.body)["dedup_key"] == "novacron-inc-1"
        assert verify_signature(KEY, req.body, req.headers["X-Novacron-Signature"], now=time.time())
        store.close()
    finally:
        stop_receiver(rx)


def test_a_page_queued_before_a_crash_that_lost_its_progress_is_not_queued_again(tmp_path: Path) -> None:
    """The crash window between queueing a page and saving the escalation: the message key closes it."""
    url = f"sqlite:///{tmp_path / 'n.db'}"
    clock = FakeClock(start=100.0)
    p1 = Incident(IncidentId("inc-1"), TargetId("web"), FaultKind.CRASH, IncidentStatus.OPEN, Priority.P1, 0.0, 0.0)
    store = Store.open(url)
    store.insert_incident(p1)
    _pager(store, clock).tick([p1])
    repo = PagingRepository(store)
    [row] = repo.escalations()
    assert row.sent == ("0.0",)
    # As if the controller died after the page was queued, before its progress was saved.
    repo.save_escalation(dataclasses.replace(row, sent=(), paged=()), now=clock.now())
    store.close()

    store = Store.open(url)
    try:
        restarted = _pager(store, clock)
        restarted.restore()
        restarted.tick([p1])
        messages = PagingRepository(store).messages()
        assert [m.notification["key"] for m in messages] == ["inc-1/oncall/page/0.0"]  # queued once
        assert PagingRepository(store).escalations()[0].sent == ("0.0",)
    finally:
        store.close()


def _pager(store: Store, clock: FakeClock) -> Pager:
    def record(incident: Incident, kind: str, detail: str, **data: Any) -> None:
        store.add_event(incident.id, TimelineEvent(clock.now(), kind, detail, data))

    policy = parse_policy({"name": "oncall", "priorities": ["P1"], "levels": [{"notify": ["ops"]}]})
    channels = [SlackChannel("ops", "http://127.0.0.1:9/unused")]
    return Pager(policies=[policy], channels=channels, store=store, clock=clock, record=record)
