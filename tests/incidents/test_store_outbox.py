"""The outbox in the store: a page for a channel that is down waits, survives a restart, and is delivered."""

from __future__ import annotations

import json
import time
from pathlib import Path

from novacron.clock import MonotonicClock
from novacron.demo.fleet import free_port_block
from novacron.incidents.paging import DELIVERY, StoreOutbox
from novacron.notify import Notification, Notifier, RetryPolicy, WebhookChannel, verify_signature
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
