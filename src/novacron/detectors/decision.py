"""Turning scores into decisions: threshold, hysteresis, minimum duration, guarded learning.

A :class:`Decision` owns one detector. For each value it scores first, decides, and only
then lets the detector learn, so an anomaly is judged against the past rather than
against itself. While a value looks anomalous it is not learned (a fault must not become
the new normal), unless the condition persists for ``relearn_after`` steps: a level that
stays put that long is a new baseline (a deploy, a resize), and refusing to learn it would
alarm forever.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from novacron.detectors.base import Detector
from novacron.errors import InputError

__all__ = ["Decision", "Verdict"]


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome for one value: its score, whether the alarm is on, and any edge."""

    score: float
    anomalous: bool
    started: bool
    ended: bool
    learned: bool


class Decision:
    """Alarm state machine over a detector's scores.

    The alarm turns on after ``min_duration`` consecutive scores at or above
    ``threshold`` and turns off at the first score below ``exit_threshold`` (hysteresis:
    defaults to ``threshold``). ``learn_anomalies=True`` lets the detector learn everything.
    """

    def __init__(
        self,
        detector: Detector,
        *,
        threshold: float | None = None,
        exit_threshold: float | None = None,
        min_duration: int = 1,
        learn_anomalies: bool = False,
        relearn_after: int = 100,
    ) -> None:
        enter = detector.default_threshold if threshold is None else threshold
        leave = enter if exit_threshold is None else exit_threshold
        if not (math.isfinite(enter) and math.isfinite(leave)):
            raise InputError("thresholds must be finite", where="threshold")
        if leave > enter:
            raise InputError(f"exit threshold {leave} is above the enter threshold {enter}", where="exit_threshold")
        if min_duration < 1:
            raise InputError(f"must be >= 1, got {min_duration}", where="min_duration")
        if relearn_after < 1:
            raise InputError(f"must be >= 1, got {relearn_after}", where="relearn_after")
        self.detector = detector
        self.threshold = enter
        self.exit_threshold = leave
        self.min_duration = min_duration
        self.learn_anomalies = learn_anomalies
        self.relearn_after = relearn_after
        self._active = False
        self._streak = 0
        self._skipped = 0

    @property
    def active(self) -> bool:
        """Whether the alarm is currently on."""
        return self._active

    def update(self, x: float) -> Verdict:
        """Score ``x``, advance the alarm state, then learn ``x`` unless it looks anomalous."""
        score = self.detector.score_one(x)
        was = self._active
        hot = score >= self.threshold
        self._streak = self._streak + 1 if hot else 0
        if not was and self._streak >= self.min_duration:
            self._active = True
        elif was and score < self.exit_threshold:
            self._active = False
        learned = self._learn(x, hot or self._active)
        return Verdict(score, self._active, self._active and not was, was and not self._active, learned)

    def _learn(self, x: float, suspicious: bool) -> bool:
        if suspicious and not self.learn_anomalies:
            self._skipped += 1
            if self._skipped <= self.relearn_after:
                return False
        else:
            self._skipped = 0
        self.detector.learn_one(x)
        return True

    def clone(self) -> Decision:
        """A fresh decision with the same settings around a fresh detector."""
        return Decision(
            self.detector.clone(),
            threshold=self.threshold,
            exit_threshold=self.exit_threshold,
            min_duration=self.min_duration,
            learn_anomalies=self.learn_anomalies,
            relearn_after=self.relearn_after,
        )
