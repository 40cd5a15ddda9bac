"""Phi-accrual under the detector contract: the one implementation in ``phi.py``, guarded.

``x`` is a heartbeat arrival time (seconds). ``score_one(t)`` is the suspicion level at
time ``t`` before ``t`` is counted as a heartbeat; ``learn_one(t)`` records the heartbeat.
"""

from __future__ import annotations

import math

from novacron.detectors.base import Detector, clip_value, finish_score, register
from novacron.detectors.phi import PhiAccrual

__all__ = ["PhiAccrualDetector"]


@register("phi_accrual")
class PhiAccrualDetector(PhiAccrual, Detector):
    """:class:`PhiAccrual` as a registered detector; non-finite times are ignored."""

    default_threshold = 8.0

    def __init__(
        self,
        *,
        threshold: float = 8.0,
        min_std_s: float = 0.1,
        acceptable_pause_s: float = 0.0,
        window: int = 1000,
        first_interval_s: float = 1.0,
    ) -> None:
        super().__init__(
            threshold=threshold,
            min_std_s=min_std_s,
            acceptable_pause_s=acceptable_pause_s,
            window=window,
            first_interval_s=first_interval_s,
        )

    def learn_one(self, x: float) -> None:
        """Record a heartbeat at time ``x``; NaN/inf are not heartbeats."""
        if math.isfinite(x):
            self.heartbeat(clip_value(x))

    def score_one(self, x: float) -> float:
        """Suspicion level (phi) at time ``x``."""
        if not math.isfinite(x):
            return 0.0
        return finish_score(self.phi(clip_value(x)))
