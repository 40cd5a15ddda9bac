"""Faults from metrics: anomaly detectors and exhaustion forecasts, per target.

Inputs are the scraper's metric observations plus the health probes' latencies, which
are averaged into a ``probe_latency_s`` metric once per metrics interval.

Each watched metric runs a detector behind a decision (score, then learn; anomalies are
not learned); an alarm's rising edge becomes a ``metric_anomaly`` fault with evidence
(metric, value, score, baseline, window). Each declared resource limit feeds a streaming
exhaustion tracker; a forecast whose ETA falls inside the limit's lead time becomes a
*preventive* ``predicted`` fault that carries its own remedy (``restart``, ``cleanup``,
``scale_out`` …), which re-enters the same healing path as any other fault.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from novacron.clock import Clock
from novacron.errors import InputError, NovacronError
from novacron.model import ActionKind, Fault, FaultId, FaultKind, Observation, Prediction, TargetId
from novacron.settings import FleetSpec, MetricsSpec, MetricWatch, TargetSpec

if TYPE_CHECKING:
    from novacron.detectors.decision import Decision
    from novacron.forecasting import ExhaustionMonitor

__all__ = ["PROBE_LATENCY", "MetricJudge"]

PROBE_LATENCY = "probe_latency_s"
_BASELINE_WINDOW = 120
_ids = itertools.count(1)


# The smallest departure from the baseline that is a fault, per metric type: (absolute in
# the metric's units, share of the baseline). A detector on a steady series finds a tenth
# of a millisecond surprising; an SRE does not restart a service for it.
_MIN_EFFECT: dict[str, tuple[float, float]] = {
    "latency": (0.001, 0.2),
    "cpu": (10.0, 0.0),
    "error_ratio": (0.01, 0.0),
    "rss": (0.0, 0.1),
}


@dataclass(frozen=True)
class _MinEffect:
    change: float
    ratio: float

    def reached(self, value: float, baseline: float) -> bool:
        """Whether ``value`` departs from ``baseline`` far enough to act on."""
        if math.isnan(baseline):  # no normal value seen yet: nothing to measure against
            return True
        return abs(value - baseline) >= max(self.change, self.ratio * abs(baseline))


@dataclass
class _Watch:
    decision: Decision
    metric_type: str
    normal: deque[float] = field(default_factory=lambda: deque(maxlen=_BASELINE_WINDOW))
    reported: bool = False  # the detector's current alarm has become a fault


def _min_effect(watch: MetricWatch) -> _MinEffect:
    # The probes' own latency is always a latency, whatever type the watch names.
    kind = "latency" if watch.metric == PROBE_LATENCY else watch.type
    change, ratio = _MIN_EFFECT.get(kind, (0.0, 0.0))
    return _MinEffect(
        change if watch.min_change is None else watch.min_change,
        ratio if watch.min_ratio is None else watch.min_ratio,
    )


def _factory(tspec: TargetSpec, index: int) -> Callable[[float], Decision]:
    assert tspec.metrics is not None
    watch = tspec.metrics.watch[index]
    where = f"targets[{tspec.name}].metrics.watch[{index}]"

    # Detectors pull in numpy and scipy: loaded only when a target watches a metric, so a
    # controller without metric watches stays small and starts fast.
    from novacron.detectors.pipeline import build_pipeline, default_pipeline  # noqa: PLC0415

    def make(step_s: float) -> Decision:
        try:
            if watch.detector is not None:
                return build_pipeline(_on_object_path(watch.detector))
            return default_pipeline(watch.type, step_s=step_s)
        except InputError as exc:
            raise InputError(exc.reason, where=f"{where}.{exc.where}") from exc

    make(tspec.metrics.interval_s)  # fail at load time, naming the watch, not at the first sample
    return make


def _on_object_path(pipeline: Mapping[str, Any]) -> dict[str, Any]:
    """The spec's pipeline, with an ensemble on the object path unless it names a kernel.

    The compiled kernels are loaded (or, on a fresh install, compiled) at their first
    call: a second of CPU from the disk cache, tens of seconds without it, all of it on
    the event loop at the first scrape, where no probe is heard and no fault handled.
    A spec that wants the kernels says ``"kernel": "auto"``.
    """
    params = pipeline.get("params", {})
    if pipeline.get("detector") != "ensemble" or not isinstance(params, Mapping) or "kernel" in params:
        return dict(pipeline)
    return {**pipeline, "params": {**params, "kernel": "python"}}


class MetricJudge:
    """Turns metric observations into anomaly and predicted-exhaustion faults."""

    def __init__(self, spec: FleetSpec, clock: Clock, on_fault: Callable[[Fault], object]) -> None:
        self._clock = clock
        self._on_fault = on_fault
        self._specs: dict[str, MetricsSpec] = {}
        self._factories: dict[tuple[str, str], tuple[str, Callable[[float], Decision]]] = {}
        self._min_effects: dict[tuple[str, str], _MinEffect] = {}
        for tspec in spec.targets:
            if tspec.metrics is None:
                continue
            self._specs[tspec.name] = tspec.metrics
            for i, watch in enumerate(tspec.metrics.watch):
                self._factories[(tspec.name, watch.metric)] = (watch.type, _factory(tspec, i))
                self._min_effects[(tspec.name, watch.metric)] = _min_effect(watch)
        self._watches: dict[tuple[str, int, str], _Watch] = {}
        self._exhaustion: ExhaustionMonitor | None = None  # built on the first resource-limit reading
        self._flagged: set[tuple[str, str]] = set()
        self._latency: dict[tuple[str, int], tuple[float, int]] = {}
        self._cleanup_paths = {t.name: t.cleanup_paths for t in spec.targets}

    def observe(self, obs: Observation) -> None:
        """Fold one observation (metrics, or a passing probe's latency) into the judges."""
        mspec = self._specs.get(obs.target)
        if mspec is None:
            return
        key = (obs.target, obs.replica)
        if obs.source != "metrics":
            # Probe latencies are averaged per metrics interval: one steady value per step
            # rather than a burst of samples whenever a restart expedites the probes.
            if obs.healthy and obs.latency_s is not None:
                total, count = self._latency.get(key, (0.0, 0))
                self._latency[key] = (total + obs.latency_s, count + 1)
            return
        values = dict(obs.metrics)
        total, count = self._latency.pop(key, (0.0, 0))
        if count:
            values[PROBE_LATENCY] = total / count
        for metric, value in values.items():
            if (obs.target, metric) in self._factories:
                self._judge(obs, metric, value, mspec)
        self._forecast(obs, mspec)

    def reset(self, target: str) -> None:
        """Forget a target's history after a restart or clean-up (a known reset, not a trend)."""
        if self._exhaustion is not None:
            self._exhaustion.restart(target)
        self._flagged = {k for k in self._flagged if k[0] != target}
        for key in [k for k in self._watches if k[0] == target]:
            del self._watches[key]

    # -- anomalies ---------------------------------------------------------------------
    def _judge(self, obs: Observation, metric: str, value: float, mspec: MetricsSpec) -> None:
        key = (obs.target, obs.replica, metric)
        watch = self._watches.get(key)
        if watch is None:
            metric_type, make = self._factories[(obs.target, metric)]
            watch = self._watches[key] = _Watch(make(mspec.interval_s), metric_type)
        verdict = watch.decision.update(value)
        if not verdict.anomalous:
            watch.normal.append(value)
        if verdict.started:
            watch.reported = False
        if not verdict.anomalous or watch.reported:
            return
        # An alarm becomes a fault once the value has moved far enough from the baseline,
        # at its start or later while it lasts (a creep crosses the floor after the alarm).
        baseline = statistics.median(watch.normal) if watch.normal else float("nan")
        if self._min_effects[(obs.target, metric)].reached(value, baseline):
            watch.reported = True
            self._emit(
                obs.target,
                FaultKind.METRIC_ANOMALY,
                {
                    "replica": obs.replica,
                    "metric": metric,
                    "value": value,
                    "score": round(verdict.score, 4),
                    "baseline": baseline,
                    "window": len(watch.normal),
                    "detail": f"{metric}={value:.4g} vs baseline {baseline:.4g} (score {verdict.score:.2f})",
                },
            )

    # -- exhaustion --------------------------------------------------------------------
    def _forecast(self, obs: Observation, mspec: MetricsSpec) -> None:
        if not mspec.limits:
            return
        if self._exhaustion is None:
            from novacron.forecasting import ExhaustionMonitor  # noqa: PLC0415 - numpy/scipy, only with limits

            self._exhaustion = ExhaustionMonitor()
        for limit in mspec.limits:
            value = obs.metrics.get(limit.metric)
            if value is None:
                continue
            try:
                self._exhaustion.observe(obs.target, limit.metric, obs.time, value, limit.limit)
            except NovacronError:
                continue  # a reading the tracker refuses (negative, time going back) is skipped
        for pred in self._exhaustion.predictions(obs.time):
            lim = next((lim for lim in mspec.limits if lim.metric == pred.resource), None)
            if pred.target != obs.target or lim is None or pred.eta_s > lim.lead_time_s:
                continue
            if (pred.target, pred.resource) not in self._flagged:
                self._flagged.add((pred.target, pred.resource))
                self._emit(obs.target, FaultKind.PREDICTED, self._prediction_evidence(pred, lim.action, lim.limit))

    def _prediction_evidence(self, pred: Prediction, action: ActionKind, limit: float) -> dict[str, Any]:
        params: dict[str, Any] = {}
        if action is ActionKind.CLEANUP and self._cleanup_paths.get(pred.target):
            params["path"] = self._cleanup_paths[pred.target][0]
        return {
            "resource": pred.resource,
            "eta_s": round(pred.eta_s, 1),
            "interval_s": [round(x, 1) for x in pred.interval],
            "confidence": round(pred.confidence, 3),
            "limit": limit,
            "remedy": action.value,
            "remedy_params": params,
            "detail": f"{pred.resource} will reach {limit:.4g} in ~{pred.eta_s:.0f}s; acting before it does",
            **{f"forecast_{k}": v for k, v in pred.evidence.items() if isinstance(v, int | float | str)},
        }

    def _emit(self, target: str, kind: FaultKind, evidence: dict[str, Any]) -> None:
        now = self._clock.now()
        self._on_fault(
            Fault(
                id=FaultId(f"flt-m{next(_ids):06d}"),
                target=TargetId(target),
                kind=kind,
                detected_at=now,
                since=now,
                evidence=evidence,
                preventive=kind is FaultKind.PREDICTED,
            )
        )
