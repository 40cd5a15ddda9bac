"""QMP error paths against the project's own QMP server: every failure is a clear QmpError."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from novacron.actuators.qemu_migrate import file_uri, migrate
from novacron.actuators.qemu_qmp import QmpError, QmpSession
from tests.vm.qmp_fake import DROP, HANG, Error, FakeQmp


@pytest.fixture
async def fake(tmp_path: Path) -> AsyncIterator[FakeQmp]:
    server = FakeQmp(tmp_path / "qmp.sock")
    await server.start()
    try:
        yield server
    finally:
        await server.close()


async def _session(fake: FakeQmp, events: list[tuple[str, dict[str, Any]]] | None = None) -> QmpSession:
    sink = events if events is not None else []
    session = QmpSession("web#0", lambda name, data: sink.append((name, dict(data))))
    await session.connect(fake.path, timeout=2.0)
    return session


async def test_a_missing_socket_names_the_socket(tmp_path: Path) -> None:
    session = QmpSession("web#0", lambda _n, _d: None)
    with pytest.raises(QmpError, match=r"cannot reach the QMP socket .*nothing\.sock"):
        await session.connect(tmp_path / "nothing.sock", timeout=0.3)


async def test_a_refused_command_says_what_qemu_said(fake: FakeQmp) -> None:
    fake.script["system_reset"] = Error("Machine does not support reset")
    session = await _session(fake)
    try:
        with pytest.raises(QmpError, match="system_reset refused: Machine does not support reset"):
            await session.execute("system_reset")
    finally:
        await session.close()


async def test_a_command_without_answer_times_out(fake: FakeQmp) -> None:
    fake.script["query-status"] = HANG
    session = await _session(fake)
    try:
        with pytest.raises(QmpError, match=r"query-status got no answer within 0\.2s"):
            await session.execute("query-status", timeout=0.2)
    finally:
        await session.close()


async def test_events_reach_the_sink(fake: FakeQmp) -> None:
    events: list[tuple[str, dict[str, Any]]] = []
    session = await _session(fake, events)
    try:
        await fake.emit("GUEST_PANICKED", {"action": "pause"})
        for _ in range(100):
            if events:
                break
            await asyncio.sleep(0.01)
        assert events == [("GUEST_PANICKED", {"action": "pause"})]
    finally:
        await session.close()


async def test_the_socket_gone_mid_migration_is_an_error(fake: FakeQmp) -> None:
    fake.script.update({"query-migrate": [{"status": "active"}, DROP]})
    session = await _session(fake)
    try:
        with pytest.raises(QmpError, match="session is gone"):
            await migrate(session, "tcp:127.0.0.1:1", timeout=5.0)
    finally:
        await session.close()


async def test_a_failed_migration_is_cancelled_and_the_guest_resumed(fake: FakeQmp) -> None:
    fake.script.update(
        {
            "query-migrate": {"status": "failed", "error-desc": "Connection refused"},
            "query-status": {"status": "paused", "running": False},
        }
    )
    session = await _session(fake)
    try:
        with pytest.raises(QmpError, match="migration failed: Connection refused"):
            await migrate(session, "tcp:127.0.0.1:1", timeout=5.0)
        assert fake.commands()[-3:] == ["migrate_cancel", "query-status", "cont"]
    finally:
        await session.close()


async def test_a_migration_past_its_deadline_is_cancelled(fake: FakeQmp, tmp_path: Path) -> None:
    fake.script.update({"query-migrate": {"status": "active"}, "query-status": {"status": "running"}})
    session = await _session(fake)
    try:
        with pytest.raises(QmpError, match=r"did not complete within 0\.2s"):
            await migrate(session, file_uri(tmp_path / "state"), timeout=0.2)
        assert "migrate_cancel" in fake.commands()
        assert "cont" not in fake.commands()  # still running: nothing to resume
    finally:
        await session.close()


async def test_a_completed_migration_reports_qemus_figures(fake: FakeQmp) -> None:
    fake.script["query-migrate"] = {
        "status": "completed",
        "total-time": 812,
        "downtime": 14,
        "ram": {"transferred": 9_437_184},
    }
    session = await _session(fake)
    try:
        stats = await migrate(session, "tcp:127.0.0.1:1", timeout=5.0)
        assert stats.as_dict() == {"total_ms": 812.0, "downtime_ms": 14.0, "bytes": 9_437_184}
        assert fake.received[1] == (
            "migrate-set-parameters",
            {"max-bandwidth": 8 << 30, "downtime-limit": 300},
        )
    finally:
        await session.close()


async def test_a_human_monitor_answer_is_an_error_unless_it_is_the_expected_confirmation(fake: FakeQmp) -> None:
    rule = "tcp:127.0.0.1:18080"
    fake.script["human-monitor-command"] = [
        f"host forwarding rule for {rule} removed\r\n",  # QEMU's confirmation of hostfwd_remove
        f"invalid host forwarding rule '{rule}'\r\n",
    ]
    session = await _session(fake)
    try:
        done = f"host forwarding rule for {rule} removed"
        assert await session.hmp(f"hostfwd_remove net0 {rule}", success=done) == done
        with pytest.raises(QmpError, match="invalid host forwarding rule"):
            await session.hmp(f"hostfwd_remove net0 {rule}", success=done)
    finally:
        await session.close()
