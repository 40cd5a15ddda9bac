"""Importing this module registers every built-in detector in :data:`~novacron.detectors.base.REGISTRY`."""

from novacron.detectors.art import ARTNovelty
from novacron.detectors.changepoint import CUSUM, PageHinkley
from novacron.detectors.ensemble import Ensemble
from novacron.detectors.heartbeat import PhiAccrualDetector
from novacron.detectors.iforest import IsolationForestDetector
from novacron.detectors.knn import KNNConformal
from novacron.detectors.likelihood import Likelihood
from novacron.detectors.lstm import LSTMDetector
from novacron.detectors.rank import ValueRank
from novacron.detectors.robust import RobustZScore
from novacron.detectors.slo import SLOBurnRate
from novacron.detectors.smoothing import EWMA, HoltWinters
from novacron.detectors.spectral import SpectralResidual

__all__ = [
    "CUSUM",
    "EWMA",
    "ARTNovelty",
    "Ensemble",
    "HoltWinters",
    "IsolationForestDetector",
    "KNNConformal",
    "LSTMDetector",
    "Likelihood",
    "PageHinkley",
    "PhiAccrualDetector",
    "RobustZScore",
    "SLOBurnRate",
    "SpectralResidual",
    "ValueRank",
]
