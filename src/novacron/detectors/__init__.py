"""Streaming anomaly detectors (learn_one / score_one), the decision wrapper, ensembles and the NAB scorer.

Names are loaded on first use (PEP 562): importing one light module of the package (the
phi-accrual detector the heartbeat sensor uses) does not pull in numpy and scipy. Asking
for any name here, or building a pipeline, registers every built-in detector in
:data:`REGISTRY`. The Isolation Forest imports scikit-learn only when it first fits
(``forecast`` extra), and the LSTM detector (``ml`` extra) imports torch only when it first
trains.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from novacron.detectors._builtins import (
        CUSUM,
        EWMA,
        ARTNovelty,
        Ensemble,
        HoltWinters,
        IsolationForestDetector,
        KNNConformal,
        Likelihood,
        LSTMDetector,
        PageHinkley,
        PhiAccrualDetector,
        RobustZScore,
        SLOBurnRate,
        SpectralResidual,
        ValueRank,
    )
    from novacron.detectors.base import REGISTRY, Detector, Registry, register
    from novacron.detectors.decision import Decision, Verdict
    from novacron.detectors.phi import PhiAccrual
    from novacron.detectors.pipeline import (
        METRIC_TYPES,
        build_detector,
        build_pipeline,
        default_pipeline,
        series_detector,
    )

__all__ = [
    "CUSUM",
    "EWMA",
    "METRIC_TYPES",
    "REGISTRY",
    "ARTNovelty",
    "Decision",
    "Detector",
    "Ensemble",
    "HoltWinters",
    "IsolationForestDetector",
    "KNNConformal",
    "LSTMDetector",
    "Likelihood",
    "PageHinkley",
    "PhiAccrual",
    "PhiAccrualDetector",
    "Registry",
    "RobustZScore",
    "SLOBurnRate",
    "SpectralResidual",
    "ValueRank",
    "Verdict",
    "build_detector",
    "build_pipeline",
    "default_pipeline",
    "register",
    "series_detector",
]

_HOMES = {
    "REGISTRY": "base",
    "Detector": "base",
    "Registry": "base",
    "register": "base",
    "Decision": "decision",
    "Verdict": "decision",
    "PhiAccrual": "phi",
    "METRIC_TYPES": "pipeline",
    "build_detector": "pipeline",
    "build_pipeline": "pipeline",
    "default_pipeline": "pipeline",
    "series_detector": "pipeline",
}


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'novacron.detectors' has no attribute {name!r}")
    importlib.import_module("novacron.detectors._builtins")  # every name implies a full registry
    return getattr(importlib.import_module(f"novacron.detectors.{_HOMES.get(name, '_builtins')}"), name)
