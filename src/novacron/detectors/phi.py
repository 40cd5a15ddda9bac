"""Phi-accrual failure detector (Hayashibara et al., 2004), as used by Akka and Cassandra.

Heartbeat inter-arrival times are kept in a bounded window; at time *t* the suspicion
level is ``phi = -log10(P(next heartbeat arrives later than t))`` under a normal model
of the intervals, whose standard deviation is floored at ``min_std_s`` and whose mean is
extended by ``acceptable_pause_s``. Akka's defaults: threshold 8, min std dev 100 ms.

One implementation serves the heartbeat sensor (``heartbeat``/``phi``) and the detector
contract (``learn_one``/``score_one``, where ``x`` is an arrival timestamp).
"""

from __future__ import annotations

import math
from collections import deque

__all__ = ["PhiAccrual"]

# Beyond this phi the tail probability underflows a double; report the cap.
_EXP_MAX = 700.0  # math.exp overflows just above 709.78
_PHI_CAP = 1_000.0


class PhiAccrual:
    """Suspicion that a heartbeat source has failed, from its inter-arrival history."""

    def __init__(
        self,
        *,
        threshold: float = 8.0,
        min_std_s: float = 0.1,
        acceptable_pause_s: float = 0.0,
        window: int = 1000,
        first_interval_s: float = 1.0,
    ) -> None:
        self.threshold = threshold
        self.min_std_s = min_std_s
        self.acceptable_pause_s = acceptable_pause_s
        self.window = window
        self.first_interval_s = first_interval_s
        self._intervals: deque[float] | None = None
        self._sum = 0.0
        self._sq = 0.0
        self._last: float | None = None

    def _state(self) -> deque[float]:
        if self._intervals is None:
            self._intervals = deque(maxlen=self.window)
            # Bootstrap as Akka does: a first interval with a wide spread, so the very
            # first gap is judged leniently rather than from a single sample.
            first = self.first_interval_s
            self._push(first - first / 4.0)
            self._push(first + first / 4.0)
        return self._intervals

    def _push(self, interval: float) -> None:
        intervals = self._intervals
        assert intervals is not None
        if len(intervals) == intervals.maxlen:
            old = intervals[0]
            self._sum -= old
            self._sq -= old * old
        intervals.append(interval)
        self._sum += interval
        self._sq += interval * interval

    def heartbeat(self, t: float) -> None:
        """Record a heartbeat arriving at time ``t`` (seconds)."""
        self._state()
        if self._last is not None and t > self._last:
            self._push(t - self._last)
        if self._last is None or t > self._last:
            self._last = t

    def phi(self, t: float) -> float:
        """Suspicion level at time ``t``; 0 before the first heartbeat."""
        intervals = self._state()
        if self._last is None or not math.isfinite(t):
            return 0.0
        n = len(intervals)
        mean = self._sum / n
        var = max(0.0, self._sq / n - mean * mean)
        std = max(math.sqrt(var), self.min_std_s)
        elapsed = max(0.0, t - self._last)
        y = (elapsed - (mean + self.acceptable_pause_s)) / std
        # Logistic approximation of the normal CDF tail used by Akka: fast and monotone.
        # Far ahead of schedule (very regular beats: a tiny std) the exponent passes what a
        # float holds (exp(710) overflows): the tail is then simply infinite.
        z = -y * (1.5976 + 0.070566 * y * y)
        e = math.exp(z) if z < _EXP_MAX else math.inf
        late = elapsed > mean + self.acceptable_pause_s
        p_later = e / (1.0 + e) if late else 1.0 - 1.0 / (1.0 + e)
        if p_later <= 0.0:
            return _PHI_CAP
        return min(_PHI_CAP, max(0.0, -math.log10(p_later)))

    def learn_one(self, x: float) -> None:
        """Detector contract: ``x`` is a heartbeat arrival time."""
        self.heartbeat(x)

    def score_one(self, x: float) -> float:
        """Detector contract: the suspicion level at time ``x``."""
        return self.phi(x)

    @property
    def last_heartbeat(self) -> float | None:
        """Arrival time of the latest heartbeat, if any."""
        return self._last
