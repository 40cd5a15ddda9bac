"""After a start, a replica is healthy only once every one of its checks has passed."""

from __future__ import annotations

from novacron.clock import FakeClock
from novacron.healing.health import HealthTracker
from novacron.model import Fault, Observation, TargetId


def _tracker(faults: list[Fault]) -> tuple[FakeClock, HealthTracker]:
    clock = FakeClock()
    health = HealthTracker(clock, on_fault=faults.append, on_recovered=lambda _t: None)
    health.configure("vm", 0, {"http:0": 3, "heartbeat": 1}, start_timeout_s=30.0)
    health.process_started("vm", 0)
    return clock, health


def _see(clock: FakeClock, health: HealthTracker, source: str, ok: bool) -> None:
    health.observe(Observation(TargetId("vm"), source, clock.now(), ok, detail="" if ok else "timed out"))


def test_a_heartbeat_alone_does_not_prove_a_check_that_has_only_failed() -> None:
    faults: list[Fault] = []
    clock, health = _tracker(faults)
    _see(clock, health, "http:0", False)  # below its threshold of three
    _see(clock, health, "heartbeat", True)
    assert not health.is_healthy("vm")
    assert health.health("vm").value == "starting"
    _see(clock, health, "http:0", True)
    assert health.is_healthy("vm")
    assert faults == []


def test_a_restart_asks_every_check_to_pass_again() -> None:
    faults: list[Fault] = []
    clock, health = _tracker(faults)
    _see(clock, health, "http:0", True)
    _see(clock, health, "heartbeat", True)
    assert health.is_healthy("vm")
    health.process_started("vm", 0)
    _see(clock, health, "heartbeat", True)
    assert not health.is_healthy("vm"), "the HTTP check has not answered since the restart"
    _see(clock, health, "http:0", True)
    assert health.is_healthy("vm")


def test_a_check_that_never_passes_fails_the_start_at_its_timeout() -> None:
    faults: list[Fault] = []
    clock, health = _tracker(faults)
    _see(clock, health, "heartbeat", True)
    clock.advance(31.0)
    health.check_start_timeouts()
    assert [f.kind.value for f in faults] == ["start_failed"]


async def test_a_verification_names_what_fails_since_the_restart_not_before_it() -> None:
    faults: list[Fault] = []
    clock, health = _tracker(faults)
    _see(clock, health, "http:0", True)
    _see(clock, health, "heartbeat", True)
    for _ in range(3):
        _see(clock, health, "http:0", False)
    assert [f.kind.value for f in faults] == ["unhealthy"]
    health.process_started("vm", 0)
    _, why = await health.wait_healthy("vm", None, timeout=0)
    assert why == "not healthy within 0s: heartbeat: no result since the start; http:0: no result since the start"
    _see(clock, health, "http:0", False)  # fails once since the restart (under its threshold), then passes
    _, why = await health.wait_healthy("vm", None, timeout=0)
    assert why == "not healthy within 0s: heartbeat: no result since the start; http:0: timed out"
    _see(clock, health, "http:0", True)
    _, why = await health.wait_healthy("vm", None, timeout=0)
    assert why == "not healthy within 0s: heartbeat: no result since the start"


def test_without_checks_a_replica_is_proven_by_running_its_minimum_uptime() -> None:
    faults: list[Fault] = []
    recovered: list[str] = []
    clock = FakeClock()
    health = HealthTracker(clock, on_fault=faults.append, on_recovered=recovered.append)
    health.configure("job", 0, {}, start_timeout_s=10.0, min_uptime_s=1.0)
    assert health.verify_window("job", 0.5) >= 1.0, "a verification can outlast the uptime to prove"
    health.process_started("job", 0)
    health.check_start_timeouts()
    assert health.health("job").value == "starting"
    assert health.replicas("job")[0].blocking() == [
        "no checks: running less than its min_uptime_s (1s) since its start"
    ]
    health.process_exited("job", 0, 1, expected=False)  # dies a moment after its start
    assert [f.kind.value for f in faults] == ["start_failed"], "it never ran long enough to count as up"
    health.process_started("job", 0)
    clock.advance(1.0)
    health.check_start_timeouts()
    assert health.is_healthy("job")
    assert recovered == ["job"]


def test_without_checks_and_no_minimum_uptime_alive_is_healthy_at_once() -> None:
    health = HealthTracker(FakeClock(), on_fault=lambda _f: None, on_recovered=lambda _t: None)
    health.configure("job", 0, {}, start_timeout_s=10.0, min_uptime_s=0.0)
    health.process_started("job", 0)
    assert health.is_healthy("job")


def test_checks_removed_by_a_reload_leave_the_next_start_to_prove_its_uptime() -> None:
    clock = FakeClock()
    health = HealthTracker(clock, on_fault=lambda _f: None, on_recovered=lambda _t: None)
    health.configure("job", 0, {"http:0": 1}, start_timeout_s=10.0, min_uptime_s=1.0)
    health.process_started("job", 0)
    health.reconfigure("job", 0, {}, start_timeout_s=10.0, min_uptime_s=1.0)  # its checks dropped in place
    health.process_started("job", 0)
    assert not health.is_healthy("job"), "without checks it has its uptime to prove"
    clock.advance(1.0)
    health.check_start_timeouts()
    assert health.is_healthy("job")
