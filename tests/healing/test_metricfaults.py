"""Metric observations become anomaly and predicted-exhaustion faults, with evidence and remedies."""

from __future__ import annotations

import random

import pytest

from novacron.clock import FakeClock
from novacron.errors import InputError
from novacron.healing.metricfaults import PROBE_LATENCY, MetricJudge
from novacron.model import ActionKind, Fault, FaultKind, Observation, TargetId
from novacron.settings import MetricsSpec, MetricWatch, ResourceLimit
from novacron.testing import fleet, http_service_target

FAST = {"detector": "zscore", "params": {}, "min_duration": 3}


def _judge(metrics: MetricsSpec, clock: FakeClock) -> tuple[MetricJudge, list[Fault]]:
    faults: list[Fault] = []
    spec = fleet(http_service_target("api", 9000, metrics=metrics, cleanup_paths=["/tmp/scratch"]))
    return MetricJudge(spec, clock, faults.append), faults


def _metrics(clock: FakeClock, **values: float) -> Observation:
    return Observation(TargetId("api"), "metrics", clock.now(), None, metrics=values)


def test_a_sustained_shift_is_one_anomaly_with_evidence() -> None:
    clock = FakeClock()
    judge, faults = _judge(MetricsSpec(watch=[MetricWatch(metric="cpu_percent", detector=FAST)]), clock)
    rng = random.Random(1)
    for _ in range(300):
        clock.advance(1)
        judge.observe(_metrics(clock, cpu_percent=abs(rng.gauss(2, 0.5))))
    assert faults == []
    for _ in range(20):
        clock.advance(1)
        judge.observe(_metrics(clock, cpu_percent=95 + rng.gauss(0, 1)))
    [fault] = faults
    assert fault.kind is FaultKind.METRIC_ANOMALY
    assert fault.evidence["metric"] == "cpu_percent"
    assert fault.evidence["value"] > 90
    assert fault.evidence["baseline"] < 5
    assert fault.evidence["window"] > 0
    assert fault.evidence["score"] > 0


def test_probe_latency_is_averaged_into_one_value_per_interval() -> None:
    clock = FakeClock()
    watch = MetricWatch(metric=PROBE_LATENCY, detector=FAST)
    judge, faults = _judge(MetricsSpec(watch=[watch]), clock)
    for step in range(400):
        for _ in range(5):
            latency = 0.001 if step < 300 else 0.001 + 0.002 * (step - 300)
            judge.observe(Observation(TargetId("api"), "http:0", clock.now(), True, latency_s=latency))
        clock.advance(1)
        judge.observe(_metrics(clock))
    assert [f.evidence["metric"] for f in faults] == [PROBE_LATENCY]


def _steady_latency(judge: MetricJudge, clock: FakeClock, steps: int, rng: random.Random) -> None:
    for _ in range(steps):
        clock.advance(1)
        judge.observe(_metrics(clock, **{PROBE_LATENCY: 0.00038 + rng.gauss(0, 0.000002)}))


@pytest.mark.parametrize(("floor", "faulted"), [({}, False), ({"min_change": 0, "min_ratio": 0}, True)])
def test_a_surprising_but_tiny_latency_change_is_no_fault(floor: dict[str, float], faulted: bool) -> None:
    clock = FakeClock()
    watch = MetricWatch(metric=PROBE_LATENCY, detector=FAST, **floor)
    judge, faults = _judge(MetricsSpec(watch=[watch]), clock)
    rng = random.Random(2)
    _steady_latency(judge, clock, 200, rng)
    for _ in range(20):  # 20 microseconds slower: ten deviations out, far under 1 ms
        clock.advance(1)
        judge.observe(_metrics(clock, **{PROBE_LATENCY: 0.0004}))
    # The detector alarms either way (no floor: a fault); the default floor keeps it from one.
    assert bool(faults) is faulted


def test_a_creep_becomes_a_fault_when_it_crosses_the_floor_during_the_alarm() -> None:
    clock = FakeClock()
    judge, faults = _judge(MetricsSpec(watch=[MetricWatch(metric=PROBE_LATENCY, detector=FAST)]), clock)
    rng = random.Random(3)
    _steady_latency(judge, clock, 200, rng)
    crossed = None
    for step in range(60):
        value = 0.0004 + 0.00005 * step  # alarms at once, passes 1.38 ms (baseline + 1 ms) at step 20
        clock.advance(1)
        judge.observe(_metrics(clock, **{PROBE_LATENCY: value}))
        if faults and crossed is None:
            crossed = step
    [fault] = faults
    assert crossed is not None
    assert crossed >= 19
    assert fault.evidence["value"] - fault.evidence["baseline"] >= 0.001


def test_a_watch_states_its_own_floor() -> None:
    clock = FakeClock()
    watch = MetricWatch(metric="cpu_percent", detector=FAST, min_change=50)
    judge, faults = _judge(MetricsSpec(watch=[watch]), clock)
    rng = random.Random(4)
    for level, steps in ((2.0, 300), (40.0, 20), (2.0, 100), (95.0, 20)):
        for _ in range(steps):
            clock.advance(1)
            judge.observe(_metrics(clock, cpu_percent=abs(rng.gauss(level, 0.5))))
    [fault] = faults  # the shift to 40 % stays under the 50-point floor; the one to 95 % does not
    assert fault.evidence["value"] > 90


def test_a_forecast_inside_the_lead_time_is_a_preventive_fault_with_its_remedy() -> None:
    clock = FakeClock()
    limit = ResourceLimit(metric="scratch_used_bytes", limit=1000, action=ActionKind.CLEANUP, lead_time_s=60)
    judge, faults = _judge(MetricsSpec(limits=[limit]), clock)
    for i in range(200):
        clock.advance(1)
        judge.observe(_metrics(clock, scratch_used_bytes=4.0 * i))
        if faults:
            break
    [fault] = faults
    assert fault.kind is FaultKind.PREDICTED
    assert fault.preventive
    assert fault.evidence["remedy"] == "cleanup"
    assert fault.evidence["remedy_params"] == {"path": "/tmp/scratch"}
    assert 0 < fault.evidence["eta_s"] <= 60
    judge.observe(_metrics(clock, scratch_used_bytes=800.0))
    assert len(faults) == 1, "one forecast is one fault until the target is reset"
    judge.reset("api")


def test_a_flat_resource_is_never_predicted() -> None:
    clock = FakeClock()
    judge, faults = _judge(MetricsSpec(limits=[ResourceLimit(metric="rss_bytes", limit=1000)]), clock)
    rng = random.Random(2)
    for _ in range(500):
        clock.advance(1)
        judge.observe(_metrics(clock, rss_bytes=400 + rng.gauss(0, 5)))
    assert faults == []


def test_an_unknown_detector_is_refused_at_load_naming_the_watch() -> None:
    watch = MetricWatch(metric="cpu_percent", detector={"detector": "crystal_ball"})
    with pytest.raises(InputError, match=r"targets\[api\]\.metrics\.watch\[0\]"):
        _judge(MetricsSpec(watch=[watch]), FakeClock())


def test_a_specd_ensemble_runs_on_the_object_path_unless_it_names_a_kernel() -> None:
    """Compiling kernels at the first scrape would block the event loop (and every probe)."""
    from novacron.detectors.ensemble import Ensemble
    from novacron.detectors.pipeline import build_pipeline
    from novacron.healing.metricfaults import _on_object_path

    plain = {"detector": "ensemble", "params": {"alarm": 0.45}, "min_duration": 8}
    built = build_pipeline(_on_object_path(plain))
    assert isinstance(built.detector, Ensemble)
    assert built.detector.kernel == "python"
    assert plain == {"detector": "ensemble", "params": {"alarm": 0.45}, "min_duration": 8}, "the spec is left as it was"
    named = {"detector": "ensemble", "params": {"kernel": "auto"}}
    assert _on_object_path(named) == named
    assert _on_object_path({"detector": "zscore"}) == {"detector": "zscore"}
