"""Streaming anomaly detectors (learn_one / score_one), the decision wrapper, ensembles and the NAB scorer.

Importing the package registers every built-in detector in :data:`REGISTRY`. The
Isolation Forest imports scikit-learn only when it first fits, and the LSTM detector
(``ml`` extra) imports torch only when it first trains.
"""

from novacron.detectors.base import REGISTRY, Detector, Registry, register
from novacron.detectors.changepoint import CUSUM, PageHinkley
from novacron.detectors.decision import Decision, Verdict
from novacron.detectors.ensemble import Ensemble
from novacron.detectors.heartbeat import PhiAccrualDetector
from novacron.detectors.iforest import IsolationForestDetector
from novacron.detectors.likelihood import Likelihood
from novacron.detectors.lstm import LSTMDetector
from novacron.detectors.phi import PhiAccrual
from novacron.detectors.pipeline import (
    METRIC_TYPES,
    build_detector,
    build_pipeline,
    default_pipeline,
    series_detector,
)
from novacron.detectors.robust import RobustZScore
from novacron.detectors.slo import SLOBurnRate
from novacron.detectors.smoothing import EWMA, HoltWinters

__all__ = [
    "CUSUM",
    "EWMA",
    "METRIC_TYPES",
    "REGISTRY",
    "Decision",
    "Detector",
    "Ensemble",
    "HoltWinters",
    "IsolationForestDetector",
    "LSTMDetector",
    "Likelihood",
    "PageHinkley",
    "PhiAccrual",
    "PhiAccrualDetector",
    "Registry",
    "RobustZScore",
    "SLOBurnRate",
    "Verdict",
    "build_detector",
    "build_pipeline",
    "default_pipeline",
    "register",
    "series_detector",
]
