"""Notifications: formats, a durable bounded outbox, and delivery to real loopback receivers."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import random
import socket
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from novacron.errors import InputError
from novacron.notify import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    JsonlOutbox,
    MemoryOutbox,
    Notification,
    Notifier,
    OutboxCorruptError,
    OutboxFullError,
    PagerDutyChannel,
    RetryPolicy,
    SlackChannel,
    WebhookChannel,
    backoff_delay,
    sign,
    verify_signature,
)
from tests.incidents.loopback_receiver import Receiver, start_receiver, stop_receiver

FAST = RetryPolicy(base_s=0.01, cap_s=0.05, max_attempts=4, timeout_s=2.0)
SECRET = b"s3cret"


def note(event: str = "trigger", key: str = "novacron-inc-1", summary: str = "api down") -> Notification:
    return Notification(
        dedup_key=key,
        event=event,  # type: ignore[arg-type]
        summary=summary,
        source="api-0",
        time=1_700_000_000.5,
        severity="critical",
        details={"priority": "P0"},
        links=(("http://novacron/incidents/inc-1", "incident"),),
    )


def test_slack_body_has_fallback_text_and_blocks() -> None:
    req = SlackChannel("slack", "http://hooks/x").request(note(), 0.0)
    body = json.loads(req.body)
    assert "api down" in body["text"]
    assert body["blocks"][0]["type"] == "section"
    assert "novacron-inc-1" in body["blocks"][-1]["elements"][0]["text"]


def test_pagerduty_events_v2_trigger_ack_resolve_share_dedup_key() -> None:
    pd = PagerDutyChannel("pd", routing_key="R" * 32, url="http://pd/enqueue")
    trigger = json.loads(pd.request(note("trigger"), 0.0).body)
    assert trigger["event_action"] == "trigger"
    assert trigger["payload"]["severity"] == "critical"
    assert trigger["payload"]["timestamp"] == "2023-11-14T22:13:20.500Z"
    assert trigger["links"] == [{"href": "http://novacron/incidents/inc-1", "text": "incident"}]
    for event in ("acknowledge", "resolve"):
        body = json.loads(pd.request(note(event), 0.0).body)
        assert body == {"routing_key": "R" * 32, "event_action": event, "dedup_key": "novacron-inc-1"}


def test_webhook_signature_over_the_raw_body() -> None:
    req = WebhookChannel("hook", "http://x", SECRET).request(note(), 1_700_000_100.0)
    ts, sig = req.headers[TIMESTAMP_HEADER], req.headers[SIGNATURE_HEADER]
    assert ts == "1700000100"
    assert sig == "sha256=" + hmac.new(SECRET, req.body, hashlib.sha256).hexdigest()
    assert verify_signature(SECRET, req.body, sig, now=1_700_000_100.0)
    assert not verify_signature(SECRET, req.body + b" ", sig, now=1_700_000_100.0)
    assert not verify_signature(b"other", req.body, sig, now=1_700_000_100.0)
    assert not verify_signature(SECRET, req.body, sig, now=1_700_001_000.0)  # stale: replay refused
    body = json.loads(req.body)
    assert body["sent_at"] == 1_700_000_100
    del body["sent_at"]
    assert Notification.from_json(body) == note()


@given(st.binary(max_size=200), st.integers(0, 2**40))
def test_signature_verifies_only_the_signed_body(tail: bytes, ts: int) -> None:
    body = json.dumps({"sent_at": ts}).encode() + tail
    sig = sign(SECRET, body)
    assert hmac.compare_digest(sig, sign(SECRET, body))
    assert not verify_signature(SECRET, body + b"x", sig, now=ts)


def test_notification_refuses_bad_fields() -> None:
    with pytest.raises(InputError, match="event"):
        note("explode")
    with pytest.raises(InputError, match="dedup_key"):
        note(key="")


@given(st.integers(0, 200))
def test_backoff_is_capped_and_jittered_downwards(attempt: int) -> None:
    policy = RetryPolicy(base_s=0.5, cap_s=30.0, jitter=0.5)
    delay = backoff_delay(attempt, policy, random.Random(attempt))
    full = min(30.0, 0.5 * 2**attempt)
    assert full * 0.5 <= delay <= full


def test_outbox_is_bounded_and_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "outbox.jsonl"
    box = JsonlOutbox(path, max_pending=2)
    a = box.put("slack", note(summary="a"), now=1.0)
    box.put("slack", note(summary="b"), now=2.0)
    with pytest.raises(OutboxFullError):
        box.put("slack", note(summary="c"), now=3.0)
    box.ack(a.id)
    box.ack(a.id)  # acking twice is harmless
    box.close()
    again = JsonlOutbox(path, max_pending=2)
    assert [i.notification.summary for i in again.pending()] == ["b"]
    again.close()


def test_torn_last_line_is_dropped_but_corruption_is_not_ignored(tmp_path: Path) -> None:
    path = tmp_path / "outbox.jsonl"
    box = JsonlOutbox(path)
    box.put("hook", note(), now=1.0)
    box.close()
    with path.open("a") as f:
        f.write('{"op":"put","item":{"id":"half')  # the writer died mid-line
    reopened = JsonlOutbox(path)
    assert len(reopened.pending()) == 1
    reopened.put("hook", note(summary="after"), now=2.0)
    reopened.close()
    assert len(JsonlOutbox(path).pending()) == 2
    path.write_text('not json\n{"op":"ack","id":"x"}\n')
    with pytest.raises(OutboxCorruptError, match=":1:"):
        JsonlOutbox(path)


def test_outbox_compacts_acknowledged_records(tmp_path: Path) -> None:
    path = tmp_path / "outbox.jsonl"
    box = JsonlOutbox(path, compact_after=10, fsync=False)
    keep = box.put("hook", note(summary="keep"), now=0.0)
    for i in range(30):
        box.ack(box.put("hook", note(summary=str(i)), now=float(i)).id)
    box.close()
    assert len(path.read_text().splitlines()) < 25
    assert [i.id for i in JsonlOutbox(path).pending()] == [keep.id]


async def test_retries_after_500s_then_delivers_signed(receiver: Receiver) -> None:
    receiver.script = [500, 503]
    box = MemoryOutbox()
    notifier = Notifier(box, [WebhookChannel("hook", receiver.url + "/hook", SECRET)], policy=FAST)
    notifier.notify(note())
    report = await notifier.drain()
    assert (report.delivered, report.attempts, report.dead) == (1, 3, 0)
    assert box.pending() == []
    last = receiver.requests[-1]
    assert last.path == "/hook"
    assert verify_signature(SECRET, last.body, last.headers[SIGNATURE_HEADER], now=time.time())


async def test_client_errors_are_dead_lettered_not_retried(receiver: Receiver) -> None:
    receiver.script = [400]
    box = MemoryOutbox()
    notifier = Notifier(box, [SlackChannel("slack", receiver.url)], policy=FAST)
    notifier.notify(note())
    report = await notifier.drain()
    assert (report.delivered, report.dead, report.attempts) == (0, 1, 1)
    assert "HTTP 400" in box.dead[0][1]


async def test_order_is_kept_per_channel_when_a_send_keeps_failing(receiver: Receiver) -> None:
    receiver.script = [500] * FAST.max_attempts
    box = MemoryOutbox()
    pd = PagerDutyChannel("pd", routing_key="k", url=receiver.url + "/v2/enqueue")
    notifier = Notifier(box, [pd], policy=FAST)
    notifier.notify(note("trigger"))
    notifier.notify(note("resolve"))
    report = await notifier.drain()
    assert (report.delivered, report.deferred) == (0, 1)
    assert len(box.pending()) == 2
    report = await notifier.drain()
    assert report.delivered == 2
    actions = [json.loads(r.body)["event_action"] for r in receiver.requests[-2:]]
    assert actions == ["trigger", "resolve"]


async def test_honours_retry_after_within_the_cap(receiver: Receiver) -> None:
    receiver.script = [429]
    receiver.extra_headers = {"Retry-After": "0.03"}
    notifier = Notifier(MemoryOutbox(), [SlackChannel("slack", receiver.url)], policy=FAST)
    notifier.notify(note())
    assert (await notifier.drain()).delivered == 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_queue_survives_a_restart_while_the_receiver_is_down(tmp_path: Path) -> None:
    port = _free_port()
    path = tmp_path / "outbox.jsonl"
    channels = [WebhookChannel("hook", f"http://127.0.0.1:{port}/in", SECRET)]
    first_box = JsonlOutbox(path)
    first = Notifier(first_box, channels, policy=FAST)
    first.notify(note("trigger"))
    first.notify(note("resolve"))
    report = await first.drain()  # nobody listening: connection refused, kept for later
    assert report.delivered == 0
    assert report.errors
    first_box.close()  # the process "stops"

    rx = start_receiver(port)
    try:
        box = JsonlOutbox(path)
        assert len(box.pending()) == 2
        report = await Notifier(box, channels, policy=FAST).drain()
        assert report.delivered == 2
        assert [json.loads(r.body)["event"] for r in rx.requests] == ["trigger", "resolve"]
        box.close()
        assert JsonlOutbox(path).pending() == []
    finally:
        stop_receiver(rx)


async def test_background_sender_delivers_as_items_arrive(receiver: Receiver) -> None:
    notifier = Notifier(MemoryOutbox(), [SlackChannel("slack", receiver.url)], policy=FAST)
    stop = asyncio.Event()
    task = asyncio.create_task(notifier.run(stop, idle_s=0.05))
    notifier.notify(note(summary="first"))
    for _ in range(200):
        if receiver.requests:
            break
        await asyncio.sleep(0.01)
    notifier.notify(note(summary="second"))
    for _ in range(200):
        if len(receiver.requests) == 2:
            break
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(task, timeout=5)
    assert ["first" in json.loads(r.body)["text"] for r in receiver.requests] == [True, False]
    assert notifier.outbox.pending() == []
