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
