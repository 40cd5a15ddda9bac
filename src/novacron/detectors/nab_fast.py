"""NAB scoring of many candidate settings quickly: per-file tallies that add up.

The rules are those of :mod:`novacron.detectors.nab`; what differs is the shape. A file's
threshold-independent parts (probation, window positions, the σ of each row outside the
windows) are prepared once, and scoring a detection vector yields a :class:`Tally`
(credit, missed windows, σ-sum of false positives) that adds across files, so one
category's or the pooled normalised score is a sum of tallies. Cross-validation scores
thousands of (setting, threshold) pairs per fold this way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from novacron.detectors.base import FloatArray
from novacron.detectors.nab import DEFAULT_PROFILES, Profile, probation_rows, scaled_sigmoid

__all__ = ["FilePlan", "Tally", "apply_hold", "normalised"]

_MAX_TP = scaled_sigmoid(-1.0)


@dataclass(frozen=True, slots=True)
class Tally:
    """What a detection vector earned: adds across files."""

    windows: int = 0
    detected: int = 0
    credit: float = 0.0  # sum of σ(p)/σ(-1) over detected windows
    fp_sigma: float = 0.0  # sum of σ over false positives (each <= 0)
    false_positives: int = 0

    def __add__(self, other: Tally) -> Tally:
        return Tally(
            self.windows + other.windows,
            self.detected + other.detected,
            self.credit + other.credit,
            self.fp_sigma + other.fp_sigma,
            self.false_positives + other.false_positives,
        )

    def raw(self, profile: Profile) -> float:
        """The raw NAB score under ``profile``."""
        missed = self.windows - self.detected
        return profile.tp * self.credit - profile.fn * missed + profile.fp * self.fp_sigma


def normalised(tally: Tally, profiles: Mapping[str, Profile] = DEFAULT_PROFILES) -> dict[str, float | None]:
    """100·(S − S_null)/(S_perfect − S_null) per profile; None without windows."""
    out: dict[str, float | None] = {}
    for name, pr in profiles.items():
        null, perfect = -pr.fn * tally.windows, pr.tp * tally.windows
        span = perfect - null
        out[name] = 100.0 * (tally.raw(pr) - null) / span if span > 0 else None
    return out


def total(tallies: Iterable[Tally]) -> Tally:
    """Sum of tallies."""
    acc = Tally()
    for t in tallies:
        acc = acc + t
    return acc


class FilePlan:
    """One file's threshold-independent scoring parts (windows as inclusive row ranges)."""

    def __init__(self, n: int, windows: Sequence[tuple[int, int]]) -> None:
        self.n = n
        start = probation_rows(n)
        sigma = np.full(n, -1.0)
        outside = np.ones(n, dtype=bool)
        self.windows: list[tuple[npt.NDArray[np.intp], FloatArray]] = []
        wins = sorted(windows)
        for k, (lo, hi) in enumerate(wins):
            width = hi - lo + 1
            outside[lo : hi + 1] = False
            rows = np.arange(max(lo, start), hi + 1)
            pos = -(hi - rows + 1) / width
            self.windows.append((rows, _sigmoid(pos) / _MAX_TP))
            nxt = wins[k + 1][0] if k + 1 < len(wins) else n
            rel = (np.arange(hi + 1, nxt) - hi) / max(width - 1, 1)
            sigma[hi + 1 : nxt] = _sigmoid(rel)
        scored = outside & (np.arange(n) >= start)
        self.fp_rows = np.flatnonzero(scored)
        self.fp_sigma = sigma[self.fp_rows]

    def tally(self, detected: npt.NDArray[np.bool_]) -> Tally:
        """Score one boolean detection vector."""
        credit, hit = 0.0, 0
        for rows, tp in self.windows:
            d = detected[rows]
            if d.any():
                credit += float(tp[int(np.argmax(d))])
                hit += 1
        fp = detected[self.fp_rows]
        return Tally(len(self.windows), hit, credit, float(self.fp_sigma[fp].sum()), int(np.count_nonzero(fp)))


def _sigmoid(p: FloatArray) -> FloatArray:
    """Vectorised :func:`~novacron.detectors.nab.scaled_sigmoid`."""
    out = 2.0 / (1.0 + np.exp(np.minimum(5.0 * p, 700.0))) - 1.0
    return np.where(p > 3.0, -1.0, out)


def apply_hold(scores: FloatArray, alarm: float, hold: int, escalate: float) -> FloatArray:
    """The ensemble's refractory hold applied to scores computed without one.

    The same rule as :meth:`~novacron.detectors.ensemble.Ensemble._apply_refractory`:
    after an alarm (score >= ``alarm``) the next ``hold`` scores read 0 unless one is at
    least ``escalate`` above the alarm that started the hold.
    """
    if hold <= 0:
        return scores
    m = scores.shape[0]
    quiet = np.zeros(m, dtype=bool)
    until, level = -1, 0.0
    for j in np.flatnonzero(scores >= alarm).tolist():
        if j <= until and scores[j] < level + escalate:
            continue
        quiet[j + 1 : j + 1 + hold] = True
        quiet[j] = False
        until, level = j + hold, float(scores[j])
    return np.where(quiet, 0.0, scores)
