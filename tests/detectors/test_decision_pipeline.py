"""The decision wrapper, the per-metric defaults and building detectors from specs."""

from __future__ import annotations

import numpy as np
import pytest

from novacron.detectors import (
    METRIC_TYPES,
    Decision,
    Registry,
    RobustZScore,
    build_detector,
    build_pipeline,
    default_pipeline,
)
from novacron.detectors.base import Detector
from novacron.errors import InputError


class Echo(Detector):
    """Scores are the inputs themselves; records what it learned."""

    def __init__(self) -> None:
        self.learned: list[float] = []

    def learn_one(self, x: float) -> None:
        self.learned.append(x)

    def score_one(self, x: float) -> float:
        return x


def test_hysteresis_enters_high_and_leaves_low() -> None:
    d = Decision(Echo(), threshold=5.0, exit_threshold=2.0)
    states = [d.update(x).anomalous for x in [1, 6, 4, 3, 1.5, 4]]
    assert states == [False, True, True, True, False, False]


def test_minimum_duration_ignores_blips() -> None:
    d = Decision(Echo(), threshold=5.0, min_duration=3)
    verdicts = [d.update(x) for x in [6, 6, 1, 6, 6, 6]]
    assert [v.anomalous for v in verdicts] == [False, False, False, False, False, True]
    assert verdicts[-1].started


def test_anomalies_are_not_learned_until_they_persist() -> None:
    det = Echo()
    d = Decision(det, threshold=5.0, relearn_after=3)
    for x in [1, 9, 9, 9, 9, 9, 2]:
        d.update(x)
    assert det.learned == [1, 9, 9, 2]  # learning resumes after 3 skipped anomalous points
    learning = Decision(Echo(), threshold=5.0, learn_anomalies=True)
    assert learning.update(9).learned


def test_decision_rejects_inverted_hysteresis() -> None:
    with pytest.raises(InputError, match="exit"):
        Decision(Echo(), threshold=1.0, exit_threshold=2.0)


@pytest.mark.parametrize("metric", METRIC_TYPES)
def test_every_metric_type_has_a_fresh_pipeline(metric: str) -> None:
    a, b = default_pipeline(metric), default_pipeline(metric)
    assert a.detector is not b.detector
    for x in np.linspace(0, 1, 50):
        assert np.isfinite(a.update(float(x)).score)


def test_unknown_metric_type_is_named() -> None:
    with pytest.raises(InputError, match="disk_smell"):
        default_pipeline("disk_smell")


def test_latency_pipeline_catches_a_creep() -> None:
    rng = np.random.default_rng(5)
    base = 0.1 + rng.normal(0, 0.005, 1500)
    creep = 0.1 + np.linspace(0, 0.08, 300) + rng.normal(0, 0.005, 300)
    d = default_pipeline("latency")
    quiet = [d.update(float(x)).started for x in base]
    fired = [d.update(float(x)).anomalous for x in creep]
    assert sum(quiet) <= 1
    assert any(fired)


def test_error_ratio_pipeline_pages_on_fast_burn() -> None:
    d = default_pipeline("error_ratio", step_s=60.0)
    assert not any(d.update(0.0005).anomalous for _ in range(120))
    assert any(d.update(0.05).anomalous for _ in range(10))


def test_build_detector_names_unknowns() -> None:
    with pytest.raises(InputError, match="nope"):
        build_detector("nope")
    with pytest.raises(InputError, match="windw"):
        build_detector("zscore", windw=3)
    with pytest.raises(InputError, match="window"):
        build_detector("zscore", window=-1)


def test_nested_specs_and_pipelines() -> None:
    det = build_detector("ensemble", members=["zscore", {"name": "cusum", "k": 1.0}], refractory=5)
    assert det.get_params()["refractory"] == 5
    pipe = build_pipeline({"detector": "likelihood", "params": {"detector": "ewma"}, "min_duration": 2})
    assert pipe.min_duration == 2
    with pytest.raises(InputError, match="colour"):
        build_pipeline({"detector": "zscore", "colour": "red"})


def test_a_registry_can_be_passed_in() -> None:
    reg = Registry()

    @reg.register("only")
    class Only(RobustZScore):
        """A plugin living in a private registry."""

    assert isinstance(build_detector("only", registry=reg), Only)
    assert "only" in reg
    with pytest.raises(InputError):
        build_detector("zscore", registry=reg)
