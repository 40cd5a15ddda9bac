"""The measured-pieces fidelity model: simulated sums and reading pieces from the store."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from novacron.benchmarks.twin_fidelity import CalibrationRun, calibrate, compare_in_fleet, repair_pieces
from novacron.errors import InputError, NotEnoughDataError
from novacron.model import FaultKind, Incident, IncidentId, IncidentStatus, Priority, TargetId, TimelineEvent
from novacron.store import Store
from novacron.twin.fidelity import DemoFleetParams, RepairSamples, simulate_repair, summarise


def _const(record: float, decision: float, apply: float, verify: float, notice: float = 0.0) -> RepairSamples:
    return RepairSamples((record,), (decision,), (apply,), (verify,), notice_s=notice)


def test_constant_pieces_add_up_exactly_for_a_crash() -> None:
    samples = _const(0.0, 0.004, 0.010, 0.060, notice=0.002)
    ttd, ttr = simulate_repair("crash", DemoFleetParams(), samples, trials=500)
    assert np.allclose(ttd, 0.002)
    assert np.allclose(ttr, 0.076)


def test_hang_waits_a_uniform_phase_for_the_first_probe() -> None:
    samples = _const(0.55, 0.003, 0.02, 0.05)
    params = DemoFleetParams(probe_interval_s=0.1)
    ttd, ttr = simulate_repair("hang", params, samples, trials=4000, seed=3)
    assert ttd.min() >= 0.55
    assert ttd.max() <= 0.65
    assert float(np.median(ttd)) == pytest.approx(0.60, abs=0.01)
    assert np.allclose(ttr - ttd, 0.073)


def test_median_of_the_sum_is_not_the_sum_of_medians() -> None:
    # Two skewed pieces: each has median 10 ms, but half the draws of either are slow.
    skewed = (0.010, 0.010, 0.010, 0.100, 0.100)
    samples = RepairSamples((0.0,), (0.0,), skewed, skewed)
    _, ttr = simulate_repair("crash", DemoFleetParams(), samples, trials=20_000, seed=1)
    # P(both fast) = 0.36 < 0.5, so the median sum is 0.11, not 0.02.
    assert summarise(ttr)["p50"] == pytest.approx(110.0, abs=0.5)


def test_pieces_are_validated() -> None:
    with pytest.raises(NotEnoughDataError, match="apply_s"):
        RepairSamples((0.0,), (0.0,), (), (0.1,))
    with pytest.raises(InputError, match="notice_s"):
        _const(0.0, 0.0, 0.0, 0.0, notice=math.inf)
    with pytest.raises(InputError, match="crash and hang"):
        simulate_repair("leak", DemoFleetParams(), _const(0.0, 0.0, 0.0, 0.0))


@settings(max_examples=30, deadline=None)
@given(st.one_of(st.floats(max_value=-1e-9), st.just(math.nan), st.just(math.inf)))
def test_negative_or_non_finite_durations_are_refused(bad: float) -> None:
    with pytest.raises(InputError, match="verify_s"):
        RepairSamples((0.0,), (0.0,), (0.0,), (0.05, bad))


def _incident(store: Store, iid: str, kind: FaultKind, marks: tuple[float, ...], *, actions: int = 1) -> None:
    since, opened, started, finished, resolved = marks
    inc = Incident(
        IncidentId(iid), TargetId("db"), kind, IncidentStatus.RESOLVED, Priority.P2, opened, since, resolved_at=resolved
    )
    store.insert_incident(inc)
    store.add_event(inc.id, TimelineEvent(opened, "detected"))
    for _ in range(actions):
        store.add_event(inc.id, TimelineEvent(started, "action_started"))
        store.add_event(inc.id, TimelineEvent(finished, "action_finished"))
    store.add_event(inc.id, TimelineEvent(resolved, "resolved"))


def test_pieces_are_read_from_incident_timelines() -> None:
    store = Store.open("sqlite://")
    try:
        _incident(store, "inc-1", FaultKind.HANG, (100.0, 100.55, 100.553, 100.573, 100.64))
        _incident(store, "inc-2", FaultKind.CRASH, (200.0, 200.0, 200.004, 200.012, 200.07))
        _incident(store, "inc-3", FaultKind.HANG, (300.0, 300.5, 300.6, 300.7, 301.0), actions=2)  # two steps: skipped
        hang = repair_pieces(store, "hang")
        crash = repair_pieces(store, "crash")
    finally:
        store.close()
    assert hang["record_s"] == [pytest.approx(0.55)]
    assert hang["decision_s"] == [pytest.approx(0.003)]
    assert hang["apply_s"] == [pytest.approx(0.02)]
    assert hang["verify_s"] == [pytest.approx(0.067)]
    assert crash["verify_s"] == [pytest.approx(0.058)]


def test_comparison_reports_percentiles_and_the_target() -> None:
    samples = {"crash": _const(0.0, 0.005, 0.01, 0.06, notice=0.002)}
    healing = {
        "mttd_ms": {"crash": {"p50": 2.0, "p95": 3.0, "p99": 4.0}},
        "mttr_ms": {"crash": {"p50": 100.0, "p95": 150.0, "p99": 160.0}},
    }
    row = compare_in_fleet(DemoFleetParams(), samples, healing)["crash"]["mttr"]
    assert row["predicted_ms"]["p50"] == pytest.approx(77.0)
    assert row["relative_error_p50"] == pytest.approx(-0.23)
    assert row["within_target"] is False


def _run(verify: list[float], notice_s: float) -> CalibrationRun:
    kind = {"record_s": [0.0], "decision_s": [0.003], "apply_s": [0.01], "verify_s": verify}
    medians = {"crash": 60.0, "hang": 700.0}
    return CalibrationRun({"crash": kind, "hang": kind}, notice_s, injected=2, healed=2, mttr_p50_ms=medians)


def test_calibration_runs_are_pooled() -> None:
    samples, summary = calibrate([_run([0.05], 0.001), _run([0.07, 0.09], 0.003)])
    assert samples["crash"].verify_s == (0.05, 0.07, 0.09)
    assert samples["crash"].notice_s == pytest.approx(0.002)
    assert samples["hang"].notice_s == 0.0
    assert summary["pieces_ms"]["crash"]["n"] == 3
    assert summary["pieces_ms"]["crash"]["verify"]["p50"] == pytest.approx(70.0)
    assert summary["healed"] == 4
    assert summary["runs_mttr_p50_ms"]["crash"] == [60.0, 60.0]
    with pytest.raises(InputError, match="calibration run"):
        calibrate([])
