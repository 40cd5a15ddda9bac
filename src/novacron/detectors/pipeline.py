"""Ready-made pipelines per metric type, and building detectors from spec dicts.

The controller asks for ``default_pipeline("latency")`` (a fresh detector + decision per
target metric) or builds one from the fleet spec with :func:`build_pipeline`. Spec dicts
may nest: an ensemble's ``members`` and a likelihood's ``detector`` can themselves be
``{"name": ..., **params}`` dicts or bare names.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

import novacron.detectors._builtins  # noqa: F401  (registers every built-in detector)
from novacron.detectors.art import ARTNovelty
from novacron.detectors.base import REGISTRY, Detector, Registry
from novacron.detectors.changepoint import CUSUM, PageHinkley
from novacron.detectors.decision import Decision
from novacron.detectors.ensemble import Ensemble
from novacron.detectors.heartbeat import PhiAccrualDetector
from novacron.detectors.knn import KNNConformal
from novacron.detectors.robust import RobustZScore
from novacron.detectors.slo import SLOBurnRate
from novacron.detectors.smoothing import HoltWinters
from novacron.detectors.spectral import SpectralResidual
from novacron.errors import InputError

__all__ = [
    "METRIC_TYPES",
    "build_detector",
    "build_pipeline",
    "default_pipeline",
    "general_ensemble",
    "season_periods",
    "series_detector",
]

# Seasonal profiles below one-minute resolution would cost megabytes per metric and
# describe noise, not the daily cycle; short steps get no seasonality.
_MIN_SEASONAL_STEP_S = 60.0

# Operations pipelines alarm at a combined tail probability of 1e-6 held for 3 points:
# on 8,000 points of Gaussian or Student-t(4) noise that gave 1-6 false alarms per
# pipeline while a 4-sigma shift was still caught within 2-5 points (docs/detectors.md).
OPS_ALARM = 0.6
OPS_MIN_DURATION = 3

# Settings of the general ensemble, chosen by leave-one-category-out cross-validation on
# the NAB development corpus (`novacron nab cv`, docs/detectors.md): the z-score,
# seasonal-residual and CUSUM members with the value-rank second opinion, alarm at a
# combined tail probability of 10^-2.4, then hold for 100 steps.
NAB_MEMBERS = "zhc"
NAB_RANK_HISTORY = 4000
NAB_ALARM = 0.24
NAB_REFRACTORY = 100

# Member letters for the ensemble candidates `novacron nab cv --candidates` names:
# z = robust z-score, h = seasonal residual, c = CUSUM, k = kNN conformal,
# a = fuzzy-ART novelty, s = spectral residual.
MEMBER_LETTERS = "zhckas"


def season_periods(step_s: float) -> tuple[int, int]:
    """(daily, weekly) season lengths in points for a sampling step; 0 = off."""
    if step_s < _MIN_SEASONAL_STEP_S or step_s > 86400.0:
        return 0, 0
    return round(86400.0 / step_s), round(7 * 86400.0 / step_s)


def member_set(name: str, step_s: float) -> tuple[Detector, ...]:
    """The members named by letters (see :data:`MEMBER_LETTERS`), e.g. ``"zhc"``."""
    daily, weekly = season_periods(step_s)
    make: dict[str, Callable[[], Detector]] = {
        "z": RobustZScore,
        "h": lambda: HoltWinters(period_daily=daily, period_weekly=weekly),
        "c": lambda: CUSUM(k=1.0),
        "k": KNNConformal,
        "a": ARTNovelty,
        "s": SpectralResidual,
    }
    if not name or any(ch not in make for ch in name) or len(set(name)) != len(name):
        raise InputError(f"unknown member set {name!r} (distinct letters from {MEMBER_LETTERS!r})", where="members")
    return tuple(make[ch]() for ch in name)


def general_ensemble(
    step_s: float,
    *,
    alarm: float = NAB_ALARM,
    refractory: int = NAB_REFRACTORY,
    members: str = NAB_MEMBERS,
    rank_history: int = NAB_RANK_HISTORY,
    kernel: str = "auto",
) -> Ensemble:
    """Robust z-score + seasonal residual + CUSUM, calibrated, combined, with the rank opinion."""
    return Ensemble(
        members=member_set(members, step_s),
        alarm=alarm,
        refractory=refractory,
        rank_history=rank_history,
        kernel=kernel,
    )


# The controller's per-metric pipelines keep the object path: compiling the kernels on a
# fresh install takes tens of seconds, which would stall the control loop at its first
# scrape; a fleet spec can still ask for {"detector": "ensemble", ...} with kernel "auto".
_OPS_KERNEL = "python"


def _ops(detector: Ensemble) -> Decision:
    return Decision(detector, exit_threshold=0.3, min_duration=OPS_MIN_DURATION)


def _latency(step_s: float) -> Decision:
    daily, weekly = season_periods(step_s)
    members = (
        RobustZScore(side="up"),
        HoltWinters(period_daily=daily, period_weekly=weekly, side="up"),
        CUSUM(k=1.0, side="up"),
    )
    return _ops(Ensemble(members=members, alarm=OPS_ALARM, kernel=_OPS_KERNEL))


def _resource_spin(step_s: float) -> Decision:
    # A runaway (CPU spin) is sustained: CUSUM accumulates it, the z-score catches jumps.
    members = (RobustZScore(side="up"), CUSUM(k=0.5, side="up"))
    return _ops(Ensemble(members=members, alarm=OPS_ALARM, kernel=_OPS_KERNEL))


def _leak(step_s: float) -> Decision:
    # Leaks are slow monotone growth: change-point tests on increases only.
    members = (CUSUM(alpha=0.005, k=0.5, side="up"), PageHinkley(side="up"))
    return _ops(Ensemble(members=members, alarm=OPS_ALARM))


def _errors(step_s: float) -> Decision:
    return Decision(SLOBurnRate(objective=0.999, step_s=step_s), threshold=1.0, exit_threshold=0.9)


def _heartbeat(step_s: float) -> Decision:
    return Decision(PhiAccrualDetector(first_interval_s=step_s), threshold=8.0, learn_anomalies=True)


def _generic(step_s: float) -> Decision:
    return _ops(general_ensemble(step_s, alarm=OPS_ALARM, refractory=0, kernel=_OPS_KERNEL))


_FACTORIES = {
    "latency": _latency,
    "error_ratio": _errors,
    "cpu": _resource_spin,
    "rss": _leak,
    "open_files": _leak,
    "threads": _leak,
    "connections": _resource_spin,
    "heartbeat": _heartbeat,
    "generic": _generic,
}
METRIC_TYPES: tuple[str, ...] = tuple(sorted(_FACTORIES))


def default_pipeline(metric_type: str, *, step_s: float = 15.0) -> Decision:
    """A fresh detector + decision with sane defaults for ``metric_type``.

    ``step_s`` is the scrape interval; it sizes seasonal profiles and SLO windows.
    """
    factory = _FACTORIES.get(metric_type)
    if factory is None:
        raise InputError(f"unknown metric type {metric_type!r} (known: {', '.join(METRIC_TYPES)})", where="metric_type")
    if not step_s > 0:
        raise InputError(f"must be > 0, got {step_s!r}", where="step_s")
    return factory(step_s)


def _nested(value: Any, registry: Registry) -> Any:
    if isinstance(value, str) and value in registry:
        return registry.create(value)
    if isinstance(value, Mapping) and "name" in value:
        params = {k: v for k, v in value.items() if k != "name"}
        return build_detector(str(value["name"]), registry=registry, **params)
    return value


def build_detector(name: str, *, registry: Registry | None = None, **params: Any) -> Detector:
    """Detector ``name`` from ``params``; nested ``detector``/``members`` may be specs.

    Unknown names and parameters raise :class:`InputError` naming them.
    """
    reg = REGISTRY if registry is None else registry
    if "detector" in params:
        params["detector"] = _nested(params["detector"], reg)
    if "members" in params and isinstance(params["members"], list | tuple):
        params["members"] = tuple(_nested(m, reg) for m in params["members"])
    return reg.create(name, **params)


_DECISION_KEYS = {"threshold", "exit_threshold", "min_duration", "learn_anomalies", "relearn_after"}


def build_pipeline(spec: Mapping[str, Any], *, registry: Registry | None = None) -> Decision:
    """A decision from ``{"detector": name, "params": {...}, "threshold": ..., ...}``."""
    unknown = set(spec) - _DECISION_KEYS - {"detector", "params"}
    if unknown:
        raise InputError(f"unknown key(s) {', '.join(sorted(unknown))}", where="pipeline")
    name = spec.get("detector")
    if not isinstance(name, str):
        raise InputError("a detector name is required", where="pipeline.detector")
    params = spec.get("params", {})
    if not isinstance(params, Mapping):
        raise InputError("must be a mapping", where="pipeline.params")
    det = build_detector(name, registry=registry, **dict(params))
    return Decision(det, **{k: spec[k] for k in _DECISION_KEYS if k in spec})


def series_detector(name: str, step_s: float, *, registry: Registry | None = None, **params: Any) -> Detector:
    """Detector ``name`` for a recorded series with sampling step ``step_s``.

    ``ensemble`` without parameters means the tuned :func:`general_ensemble`; detectors
    with season periods get them sized from ``step_s`` unless given.
    """
    reg = REGISTRY if registry is None else registry
    if name == "ensemble" and not params:
        return general_ensemble(step_s)
    cls = reg.get(name)
    if cls is not None and "period_daily" in inspect.signature(cls.__init__).parameters:
        daily, weekly = season_periods(step_s)
        params.setdefault("period_daily", daily)
        params.setdefault("period_weekly", weekly)
    return build_detector(name, registry=reg, **params)
