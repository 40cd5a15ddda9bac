"""Importing this module registers every built-in detector in :data:`~novacron.detectors.base.REGISTRY`."""

from novacron.detectors.changepoint import CUSUM, PageHinkley
from novacron.detectors.ensemble import Ensemble
from novacron.detectors.heartbeat import PhiAccrualDetector
from novacron.detectors.iforest import IsolationForestDetector
from novacron.detectors.likelihood import Likelihood
from novacron.detectors.lstm import LSTMDetector
from novacron.detectors.robust import RobustZScore
from novacron.detectors.slo import SLOBurnRate
from novacron.detectors.smoothing import EWMA, HoltWinters

__all__ = [
    "CUSUM",
    "EWMA",
    "Ensemble",
    "HoltWinters",
    "IsolationForestDetector",
    "LSTMDetector",
    "Likelihood",
    "PageHinkley",
    "PhiAccrualDetector",
    "RobustZScore",
    "SLOBurnRate",
]
