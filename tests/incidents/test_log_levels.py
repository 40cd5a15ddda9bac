"""`novacron run` logs by meaning: a fault is a warning, a hand-over to a human an error; signals by name."""

from __future__ import annotations

from pathlib import Path

import structlog

from novacron.clock import FakeClock
from novacron.incidents.lifecycle import IncidentManager, describe_exit
from novacron.model import Fault, FaultId, FaultKind, TargetId
from novacron.store import Store
from novacron.telemetry import Metrics


def test_levels_follow_meaning_and_exit_codes_read_as_signals(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'n.db'}")
    clock = FakeClock(start=1_800_000_000.0)
    manager = IncidentManager(store, clock, Metrics())
    crash = Fault(FaultId("f-1"), TargetId("api"), FaultKind.CRASH, clock.now(), clock.now(), {"exit_code": -9})
    with structlog.testing.capture_logs() as logs:
        inc, _ = manager.on_fault(crash)
        manager.event(inc, "diagnosed", "a local fault")
        manager.escalate(inc, "ladder exhausted")
    store.close()
    levels = {entry["event"]: entry["log_level"] for entry in logs}
    assert levels == {"detected": "warning", "diagnosed": "info", "escalated": "error", "priority": "warning"}
    assert inc.summary == "crash on api: killed by SIGKILL"
    assert describe_exit(-15) == "killed by SIGTERM"
    assert describe_exit(3) == "exited with 3"
    assert describe_exit(-200) == "killed by signal 200"
