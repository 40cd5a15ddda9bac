"""Streaming exhaustion prediction: feed ``(t, value)`` points, ask for a Prediction.

One :class:`ExhaustionTracker` follows one bounded resource of one target (RSS against a
memory limit, disk usage against a volume size, open files against ``ulimit -n``).
:class:`ExhaustionMonitor` keeps one tracker per ``(target, resource)`` for a controller.
Times come from the caller (its injected clock), never from here.
"""

from __future__ import annotations

import math
from collections import deque
from types import MappingProxyType
from typing import Any

import numpy as np

from novacron.errors import InputError
from novacron.forecasting.exhaustion import ExhaustionAssessment, ExhaustionConfig, assess_exhaustion
from novacron.model import Prediction, TargetId

__all__ = ["ExhaustionMonitor", "ExhaustionTracker"]


class ExhaustionTracker:
    """Leak test and time-to-exhaustion for one resource, updated point by point.

    ``max_history`` bounds memory; ``max_gap_s`` (if set) forgets the history after a gap
    longer than it, since a trend across a blackout is a guess. Call :meth:`restart`
    when something known frees the resource (a restart, a clean-up) so the trend starts
    afresh instead of being read as one tooth of a sawtooth.
    """

    def __init__(
        self,
        resource: str,
        limit: float,
        *,
        target: str = "",
        config: ExhaustionConfig | None = None,
        max_history: int = 4096,
        max_gap_s: float | None = None,
    ) -> None:
        if not (math.isfinite(limit) and limit > 0):
            raise InputError(f"must be a positive number, got {limit!r}", where=f"{resource}.limit")
        self.resource = resource
        self.limit = float(limit)
        self.target = TargetId(target)
        self.config = config or ExhaustionConfig()
        self.max_gap_s = max_gap_s
        self._t: deque[float] = deque(maxlen=max_history)
        self._y: deque[float] = deque(maxlen=max_history)
        self._version = 0
        self._cached: tuple[int, ExhaustionAssessment | None] = (-1, None)

    def __len__(self) -> int:
        return len(self._t)

    def update(self, t: float, value: float) -> None:
        """Add one reading; rejects non-finite or negative values and time going back."""
        where = f"{self.target or '-'}/{self.resource} at t={t!r}"
        if not (math.isfinite(t) and math.isfinite(value)):
            raise InputError("time and value must be finite numbers", where=where)
        if value < 0:
            raise InputError(f"impossible negative value {value:g}", where=where)
        if self._t and t <= self._t[-1]:
            raise InputError(f"time does not increase (last was {self._t[-1]!r})", where=where)
        if self._t and self.max_gap_s is not None and t - self._t[-1] > self.max_gap_s:
            self.restart()
        self._t.append(float(t))
        self._y.append(float(value))
        self._version += 1

    def restart(self) -> None:
        """Forget the history: a known change point (the resource was freed on purpose)."""
        self._t.clear()
        self._y.clear()
        self._version += 1

    def assess(self) -> ExhaustionAssessment | None:
        """The full verdict as of the last reading, or None with fewer than two readings."""
        version, cached = self._cached
        if version == self._version:
            return cached
        verdict = None
        if len(self._t) >= 2:
            t = np.fromiter(self._t, dtype=np.float64, count=len(self._t))
            y = np.fromiter(self._y, dtype=np.float64, count=len(self._y))
            verdict = assess_exhaustion(t, y, self.limit, self.config)
        self._cached = (self._version, verdict)
        return verdict

    def predict(self, now: float) -> Prediction | None:
        """A Prediction if the resource leaks towards its limit, else None.

        ``eta_s`` and ``interval`` count from ``now`` (time since the last reading is
        subtracted, never below zero).
        """
        verdict = self.assess()
        if verdict is None or not verdict.leak:
            return None
        elapsed = max(0.0, now - verdict.at)
        low, high = verdict.interval
        evidence: dict[str, Any] = {
            "reason": verdict.reason,
            "mode": verdict.mode,
            "slope_per_s": verdict.slope,
            "mann_kendall_p": verdict.p_value,
            "kendall_tau": verdict.tau,
            "window_start": verdict.window[0],
            "window_end": verdict.window[1],
            "window_points": verdict.points,
            "level": verdict.level,
            "limit": verdict.limit,
            **verdict.evidence,
        }
        return Prediction(
            target=self.target,
            resource=self.resource,
            made_at=now,
            eta_s=max(0.0, verdict.eta_s - elapsed),
            interval=(max(0.0, low - elapsed), max(0.0, high - elapsed)),
            confidence=verdict.confidence,
            evidence=MappingProxyType(evidence),
        )


class ExhaustionMonitor:
    """One :class:`ExhaustionTracker` per ``(target, resource)``, created on first sight."""

    def __init__(self, config: ExhaustionConfig | None = None, *, max_gap_s: float | None = None) -> None:
        self.config = config
        self.max_gap_s = max_gap_s
        self._trackers: dict[tuple[str, str], ExhaustionTracker] = {}

    def observe(self, target: str, resource: str, t: float, value: float, limit: float) -> None:
        """Record a reading; a changed ``limit`` restarts that resource's history."""
        key = (target, resource)
        tracker = self._trackers.get(key)
        if tracker is None or tracker.limit != limit:
            tracker = ExhaustionTracker(resource, limit, target=target, config=self.config, max_gap_s=self.max_gap_s)
            self._trackers[key] = tracker
        tracker.update(t, value)

    def restart(self, target: str, resource: str | None = None) -> None:
        """Forget a target's history (all its resources, or one) after a known reset."""
        for (tgt, res), tracker in self._trackers.items():
            if tgt == target and resource in (None, res):
                tracker.restart()

    def predictions(self, now: float) -> list[Prediction]:
        """Every current Prediction, soonest exhaustion first."""
        found = [p for tr in self._trackers.values() if (p := tr.predict(now)) is not None]
        return sorted(found, key=lambda p: p.eta_s)
