"""Leave-one-category-out cross-validation of anomaly-pipeline settings on NAB data.

Every setting of the pipeline (which members, the rank second opinion, the refractory
hold, the alarm threshold) is a *candidate*. For each category, the candidate and the
threshold are chosen on the other categories' files and labels only, then the held-out
category is scored once with them; the held-out tallies, added over all categories, give
the pooled out-of-sample score. The labels of a file never reach the settings it is
scored with (``tests/detectors/test_nab_cv.py`` changes a held-out category's labels and
checks that its fold's choice does not move).

Detector scores do not depend on labels, so each candidate's scores are computed once per
file and shared by every fold; a (candidate, hold, threshold) cell is tallied once per
file, and a fold's score is a sum of those tallies.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from novacron.detectors.base import FloatArray
from novacron.detectors.nab import DEFAULT_PROFILES, Profile
from novacron.detectors.nab_fast import FilePlan, Tally, apply_hold, normalised, total
from novacron.errors import InputError

__all__ = [
    "THRESHOLDS",
    "Case",
    "CvResult",
    "Selection",
    "category_folds",
    "cross_validate",
    "select",
]

# Alarm thresholds tried (scores are in [0, 1]); finer near 1, where saturating scores
# (and squashed raw scores, s/(1+s)) crowd.
THRESHOLDS: FloatArray = np.concatenate(
    [np.round(np.arange(0.05, 0.991, 0.01), 2), np.array([0.995, 0.998, 0.999, 1.0])]
)
# The hold's escape margin, as in the ensemble.
_ESCALATE = 0.3

Scorer = Callable[[str, "Case"], FloatArray]


@dataclass(frozen=True)
class Case:
    """One labelled file: its key (``<category>/<name>.csv``), values, step and windows."""

    key: str
    values: FloatArray
    step_s: float
    windows: Sequence[tuple[int, int]] = field(default_factory=tuple)

    @property
    def category(self) -> str:
        """The folder the file sits in."""
        return self.key.split("/", 1)[0]


@dataclass(frozen=True)
class Selection:
    """What a fold (or the final fit) chose, and its score on the files it was chosen on."""

    candidate: str
    hold: int
    threshold: float
    train_standard: float


@dataclass(frozen=True)
class CvResult:
    """Pooled out-of-sample scores, per-category detail, and the final choice on everything."""

    pooled: dict[str, Any]
    by_category: dict[str, dict[str, Any]]
    final: Selection
    candidates: int

    def to_json(self) -> dict[str, Any]:
        """The ``novacron nab cv --json`` object."""
        return {
            "pooled": self.pooled,
            "by_category": self.by_category,
            "final": {
                "candidate": self.final.candidate,
                "hold": self.final.hold,
                "threshold": self.final.threshold,
                "train_standard": round(self.final.train_standard, 3),
            },
            "candidates": self.candidates,
        }


def category_folds(cases: Sequence[Case]) -> list[tuple[str, list[int], list[int]]]:
    """``(category, train indices, test indices)`` per category; test never in train."""
    cats = sorted({c.category for c in cases})
    if len(cats) < 2:
        raise InputError(f"need at least two categories to hold one out, found {cats}", where="--data")
    folds = []
    for cat in cats:
        test = [i for i, c in enumerate(cases) if c.category == cat]
        train = [i for i, c in enumerate(cases) if c.category != cat]
        folds.append((cat, train, test))
    return folds


class _Table:
    """Tallies per (candidate, hold, threshold, file), computed once."""

    def __init__(self, cases: Sequence[Case], plans: Sequence[FilePlan]) -> None:
        self.cases = cases
        self.plans = plans
        self.cells: dict[tuple[str, int], list[list[Tally]]] = {}

    def fill(self, name: str, hold: int, scores: Sequence[FloatArray], thresholds: FloatArray) -> None:
        rows: list[list[Tally]] = []
        for t in thresholds.tolist():
            row = []
            for plan, s in zip(self.plans, scores, strict=True):
                held = apply_hold(s, t, hold, _ESCALATE)
                row.append(plan.tally(held >= t))
            rows.append(row)
        self.cells[(name, hold)] = rows

    def score(self, key: tuple[str, int], files: Sequence[int], t_index: int) -> Tally:
        row = self.cells[key][t_index]
        return total(row[i] for i in files)


def _smoothed(curve: FloatArray) -> FloatArray:
    """Three-point moving average: a threshold on a plateau beats a lone peak."""
    padded = np.concatenate([[curve[0]], curve, [curve[-1]]])
    return np.asarray((padded[:-2] + padded[1:-1] + padded[2:]) / 3.0, dtype=np.float64)


def select(table: _Table, files: Sequence[int], thresholds: FloatArray, profile: Profile) -> Selection:
    """Best (candidate, hold, threshold) on ``files`` by the smoothed standard score."""
    best: tuple[float, Selection] | None = None
    for key in sorted(table.cells):
        curve = np.array([_standard(table.score(key, files, k), profile) for k in range(thresholds.shape[0])])
        smooth = _smoothed(curve)
        k = int(np.argmax(smooth))
        sel = Selection(key[0], key[1], float(thresholds[k]), float(curve[k]))
        if best is None or smooth[k] > best[0]:
            best = (float(smooth[k]), sel)
    assert best is not None
    return best[1]


def _standard(tally: Tally, profile: Profile) -> float:
    null, perfect = -profile.fn * tally.windows, profile.tp * tally.windows
    span = perfect - null
    # Categories without windows (anomaly-free files) still count: their raw score is
    # the false positives' cost, which the span of the others normalises.
    return tally.raw(profile) - null if span <= 0 else 100.0 * (tally.raw(profile) - null) / span


def cross_validate(
    cases: Sequence[Case],
    candidates: Mapping[str, Sequence[int]],
    scorer: Scorer,
    *,
    thresholds: FloatArray = THRESHOLDS,
    profiles: Mapping[str, Profile] = DEFAULT_PROFILES,
) -> CvResult:
    """Leave-one-category-out CV over ``candidates`` (name → holds to try).

    ``scorer(name, case)`` returns the candidate's unit scores for a file, computed
    streaming (each row sees only the rows before it) and without a hold.
    """
    if not cases:
        raise InputError("no files to cross-validate", where="--data")
    folds = category_folds(cases)
    plans = [FilePlan(c.values.shape[0], c.windows) for c in cases]
    table = _Table(cases, plans)
    for name, holds in candidates.items():
        scores = [scorer(name, c) for c in cases]
        for hold in holds:
            table.fill(name, hold, scores, thresholds)
    standard = profiles.get("standard", next(iter(profiles.values())))
    pooled = Tally()
    by_category: dict[str, dict[str, Any]] = {}
    for cat, train, test in folds:
        sel = select(table, train, thresholds, standard)
        k = int(np.flatnonzero(thresholds == sel.threshold)[0])
        held = table.score((sel.candidate, sel.hold), test, k)
        pooled = pooled + held
        by_category[cat] = _report(held, sel, len(test), profiles)
    final = select(table, list(range(len(cases))), thresholds, standard)
    pooled_json: dict[str, Any] = {k: _round(v) for k, v in normalised(pooled, profiles).items()}
    pooled_json["threshold"] = final.threshold
    pooled_json["windows"] = pooled.windows
    pooled_json["detected"] = pooled.detected
    pooled_json["false_positives"] = pooled.false_positives
    return CvResult(pooled_json, by_category, final, sum(len(h) for h in candidates.values()))


def _report(held: Tally, sel: Selection, files: int, profiles: Mapping[str, Profile]) -> dict[str, Any]:
    out: dict[str, Any] = {k: _round(v) for k, v in normalised(held, profiles).items()}
    out.update(
        {
            "threshold": sel.threshold,
            "candidate": sel.candidate,
            "hold": sel.hold,
            "train_standard": round(sel.train_standard, 3),
            "files": files,
            "windows": held.windows,
            "detected": held.detected,
            "false_positives": held.false_positives,
        }
    )
    return out


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 3)
