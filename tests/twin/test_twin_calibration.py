"""A twin calibrated from a real fleet: decision time, per-target answer times, and their checks."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

import pytest

from novacron.errors import ConfigError
from novacron.healing.catalog import new_action
from novacron.model import (
    ActionKind,
    ActionStatus,
    FaultKind,
    Incident,
    IncidentId,
    IncidentStatus,
    Priority,
    TargetId,
)
from novacron.runtime.twinspec import measure_timings, twin_of
from novacron.sensors.sim import SimSensor
from novacron.settings import parse_spec
from novacron.store import Store
from novacron.twin import Simulator, build_fleet


def _repair(
    store: Store, n: int, target: str, kind: FaultKind, *, opened: float, started: float, healthy: float
) -> None:
    """One incident healed by one restart: opened, action started, verified healthy (seconds)."""
    iid = IncidentId(f"inc-{n}")
    store.insert_incident(
        Incident(iid, TargetId(target), kind, IncidentStatus.RESOLVED, Priority.P3, opened, opened, resolved_at=healthy)
    )
    action = new_action(ActionKind.RESTART, TargetId(target), key=f"k{n}", incident_id=iid)
    store.claim_action(action, ActionStatus.PLANNED, now=started)
    store.set_action_status(action.id, ActionStatus.VERIFIED, started_at=started, finished_at=healthy)


def test_timings_take_the_decision_and_each_targets_answer_time_from_the_store(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 's.db'}")
    try:
        # db answers in 10 ms, api in 50 ms; restarts take 300 ms, a hung one 100 ms more to stop.
        for i, (target, answer) in enumerate([("db", 0.01), ("api", 0.05)] * 3):
            t = 100.0 * i
            _repair(store, i, target, FaultKind.CRASH, opened=t, started=t + 0.04, healthy=t + 0.04 + 0.3 + answer)
            t += 50.0
            _repair(store, 10 + i, target, FaultKind.HANG, opened=t, started=t + 0.06, healthy=t + 0.06 + 0.4 + answer)
        timings = measure_timings(store, latencies={"db": (0.01, 0.05), "api": (0.05, 0.2)})
    finally:
        store.close()
    assert timings.restart_s == pytest.approx(0.3, abs=1e-3)
    assert timings.stop_s == pytest.approx(0.1, abs=1e-3)
    assert timings.decide_s == pytest.approx(0.05, abs=1e-3)  # the median of 40 ms and 60 ms decisions
    assert timings.samples == {"crash/restart": 6, "hang/restart": 6}


def _two_targets(**twin: Any) -> dict[str, Any]:
    check = {"type": "http", "url": "http://twin/health", "interval_s": 0.1}
    return {
        "twin": twin,
        "targets": [
            {"name": "db", "kind": "sim", "checks": [check]},
            {"name": "api", "kind": "sim", "checks": [check], "depends_on": ["db"]},
        ],
    }


def test_twin_of_carries_decision_and_answer_times_into_the_spec(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 's.db'}")
    try:
        for i in range(3):
            _repair(store, i, "db", FaultKind.CRASH, opened=10.0 * i, started=10.0 * i + 0.02, healthy=10.0 * i + 0.5)
        timings = measure_timings(store, latencies={"db": (0.01, 0.08), "gone": (0.01, 0.02)})
    finally:
        store.close()
    spec = twin_of(parse_spec(_two_targets()), timings, store_url="sqlite:///:memory:")
    assert spec.twin is not None
    assert spec.twin.decide_s == pytest.approx(0.02)
    assert set(spec.twin.latency) == {"db"}, "answer times only for the spec's own targets"
    assert spec.twin.latency["db"].p99_s == pytest.approx(0.08)


def test_a_sim_targets_answers_are_drawn_from_its_measured_median_and_tail() -> None:
    sim = Simulator(build_fleet(2, 2, seed=1), seed=1)
    sensor = SimSensor(sim, {"db": 0, "api": 1}, latencies={"db": (0.002, 0.08)}, latency_s=0.03, seed=5)
    draws = sorted(sensor.latency("db") for _ in range(4000))
    assert statistics.median(draws) == pytest.approx(0.002, rel=0.1)
    assert draws[int(0.99 * len(draws))] == pytest.approx(0.08, rel=0.25)
    assert sensor.latency("api") == pytest.approx(0.03), "a target without its own keeps probe_latency_s"
    again = SimSensor(sim, {"db": 0, "api": 1}, latencies={"db": (0.002, 0.08)}, seed=5)
    assert sorted(again.latency("db") for _ in range(4000)) == draws, "seeded: the same twin draws the same"


def test_answer_times_for_unknown_targets_or_out_of_order_are_refused_naming_the_field() -> None:
    with pytest.raises(ConfigError, match=r"twin\.latency\.cache"):
        parse_spec(_two_targets(latency={"cache": {"p50_s": 0.01, "p99_s": 0.1}}))
    with pytest.raises(ConfigError, match=r"p99_s"):
        parse_spec(_two_targets(latency={"db": {"p50_s": 0.1, "p99_s": 0.01}}))
    with pytest.raises(ConfigError, match=r"decide_s"):
        parse_spec(_two_targets(decide_s=-1))
