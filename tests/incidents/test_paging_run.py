"""Paging inside ``novacron run``: a real controller, a real loopback webhook receiver, the real CLI."""

from __future__ import annotations

import json
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from novacron.notify import SIGNATURE_HEADER, verify_signature
from novacron.store import Store
from novacron.store.paging import EscalationRow, OutboxRow, PagingRepository
from tests.cli.runner import Running, cli, controller, kill_fleet, service, spawn, stop, write_spec
from tests.incidents.loopback_receiver import Receiver, start_receiver, stop_receiver

SECRET = "s3cret-for-the-test"  # noqa: S105 - the receiver's key in this test
VERIFY_S = 1.5
POLICY: dict[str, Any] = {
    "verify_timeout_s": VERIFY_S,
    "backoff": {"base_s": 0.1, "cap_s": 1.0},
    "flap": {"threshold": 50},
}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rx = start_receiver()
    yield rx
    stop_receiver(rx)


def _paging_spec(tmp_path: Path, rx: Receiver, *, broken: bool) -> Path:
    command = [sys.executable, "-c", "raise SystemExit(1)"] if broken else None
    web = service("web", **({"command": command} if command else {}))
    path = write_spec(tmp_path, web, **POLICY)
    spec = yaml.safe_load(path.read_text())
    spec["notify"] = [{"name": "ops", "type": "webhook", "url": rx.url + "/hook", "secret_env": "NOVACRON_HOOK_KEY"}]
    spec["escalation"] = [
        {"name": "oncall", "priorities": ["P0", "P1"], "levels": [{"notify": ["ops"], "repeat_every_s": 1.0}]}
    ]
    spec["escalation"][0]["levels"][0]["max_repeats"] = 100
    path.write_text(yaml.safe_dump(spec))
    return path


def _messages(rx: Receiver, event: str) -> list[tuple[dict[str, Any], dict[str, str]]]:
    with rx.lock:
        got = [(json.loads(r.body), r.headers, r.body) for r in rx.requests]
    out = []
    for body, headers, raw in got:
        assert verify_signature(SECRET.encode(), raw, headers[SIGNATURE_HEADER], now=time.time())
        if body["event"] == event:
            out.append((body, headers))
    return out


def _escalated_at(tmp_path: Path, incident_id: str) -> float:
    """When the incident first called for a human: escalated, or re-assessed to P0/P1."""
    store = Store.open(f"sqlite:///{tmp_path / 'n.db'}")
    try:
        return next(
            e.time
            for e in store.timeline(incident_id)
            if e.kind == "escalated" or (e.kind == "priority" and e.data.get("priority") in ("P0", "P1"))
        )
    finally:
        store.close()


def _wait(pred: Any, what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := pred():
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def test_a_target_that_never_starts_is_paged_signed_acked_and_resolved(
    tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOVACRON_HOOK_KEY", SECRET)
    spec = _paging_spec(tmp_path, receiver, broken=True)
    with controller(spec):
        first = _wait(lambda: _messages(receiver, "trigger"), "a page")
        seen_at = time.time()
        body, headers = first[0]
        assert headers[SIGNATURE_HEADER].startswith("sha256=")
        assert body["source"] == "web"
        assert "web" in body["summary"]
        incident = body["details"]["incident"]
        assert body["dedup_key"].endswith(incident)
        assert seen_at - _escalated_at(tmp_path, incident) <= VERIFY_S + 5
        _wait(lambda: len(_messages(receiver, "trigger")) >= 2, "a repeated page")
        ack = cli("incidents", "ack", incident, "-c", str(spec))
        assert ack.returncode == 0, ack.stderr
        _wait(lambda: _messages(receiver, "acknowledge"), "the acknowledgement sent to the paged")
        after_ack = len(_messages(receiver, "trigger"))
        time.sleep(2.5)  # more than two repeat intervals
        assert len(_messages(receiver, "trigger")) == after_ack
    # The fix: the same target with a command that works, and the controller restarted on it.
    fixed = _paging_spec(tmp_path, receiver, broken=False)
    with controller(fixed):
        resolved = _wait(lambda: _messages(receiver, "resolve"), "the resolution", timeout=30)
        assert resolved[0][0]["details"]["incident"] == incident
    assert len(_messages(receiver, "trigger")) == after_ack  # nobody paged again after the restart


_UNSET_HOOK = {"name": "ops", "type": "webhook", "url": "http://127.0.0.1:9/h", "secret_env": "NOVACRON_UNSET_KEY"}


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"notify": [_UNSET_HOOK]}, "notify[0].secret_env"),
        ({"escalation": [{"levels": [{"notify": ["nobody"]}]}]}, "escalation[0].levels[0].notify[0]"),
        ({"notify": [{"name": "ops", "type": "webhook", "url": "http://127.0.0.1:9/h"}]}, "notify[0]"),
        ({"runbooks": [{"path": "rb.yaml", "match": {"targets": ["ghost"]}}]}, "runbooks[0].match.targets[0]"),
    ],
)
def test_bad_paging_blocks_exit_2_naming_the_field_and_start_nothing(
    tmp_path: Path, extra: dict[str, Any], field: str
) -> None:
    path = write_spec(tmp_path, service("web"))
    spec = yaml.safe_load(path.read_text())
    spec.update(extra)
    path.write_text(yaml.safe_dump(spec))
    for command in (["validate", "-c", str(path)], ["run", "-c", str(path)]):
        res = cli(*command, env={"NOVACRON_UNSET_KEY": ""}, timeout=30)
        assert res.returncode == 2, res.stderr
        assert field in res.stderr
    assert not (tmp_path / "n.db").exists()  # nothing started, not even the store


def _kill(run: Running) -> float:
    """SIGKILL the controller (no shutdown of any kind); when it died."""
    run.proc.send_signal(signal.SIGKILL)
    run.proc.wait(10)
    kill_fleet(run.spec.parent)
    return time.time()


def _delivered(tmp_path: Path) -> list[OutboxRow]:
    store = Store.open(f"sqlite:///{tmp_path / 'n.db'}")
    try:
        return [m for m in PagingRepository(store).messages() if m.state == "delivered"]
    finally:
        store.close()


def _escalation_row(tmp_path: Path) -> EscalationRow | None:
    store = Store.open(f"sqlite:///{tmp_path / 'n.db'}")
    try:
        rows = PagingRepository(store).escalations()
        return rows[0] if rows else None
    finally:
        store.close()


def test_a_controller_killed_mid_escalation_keeps_the_schedule_and_pages_each_step_once(
    tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOVACRON_HOOK_KEY", SECRET)
    spec = _paging_spec(tmp_path, receiver, broken=True)
    data = yaml.safe_load(spec.read_text())
    data["escalation"][0]["levels"] = [{"notify": ["ops"], "after_s": 3.0, "repeat_every_s": 2.5, "max_repeats": 5}]
    spec.write_text(yaml.safe_dump(data))
    run = spawn(spec)
    try:
        # Killed after the incident called for a human but before its first page fell due.
        _wait(lambda: _escalation_row(tmp_path), "the escalation's start stored", timeout=30)
        time.sleep(0.5)
        first_kill = _kill(run)
        assert not _messages(receiver, "trigger")
        run = spawn(spec)
        first = _wait(lambda: _messages(receiver, "trigger"), "the first page after the restart")
        row = _escalation_row(tmp_path)
        assert row is not None
        assert row.started_at < first_kill  # the schedule runs from its stored start, not from the restart
        # Killed again once the first page was recorded delivered: the restart must not page it again.
        _wait(lambda: _delivered(tmp_path), "the first page recorded as delivered")
        _kill(run)
        time.sleep(5.5)  # down while two repeats fall due: the restart sends one page for them, the newest
        run = spawn(spec)
        _wait(lambda: len(_messages(receiver, "trigger")) >= 2, "the first repeat after the second restart")
    finally:
        stop(run)
    pages = [(body["details"]["level"], body["details"]["repeat"]) for body, _ in _messages(receiver, "trigger")]
    assert pages[0] == (0, 0), pages
    assert pages[1][1] >= 2, pages
    assert (0, 1) not in pages, pages  # folded into the newest repeat due, never sent on its own
    assert len(pages) == len(set(pages)), pages  # every page of the schedule exactly once
    incident = first[0][0]["details"]["incident"]
    assert first[0][0]["key"] == f"{incident}/oncall/page/0.0"  # the receiver's key to drop a redelivery
