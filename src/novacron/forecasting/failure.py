"""Component-failure prediction: "will this drive fail within H hours?" from daily SMART rows.

The model is scikit-learn's HistGradientBoostingClassifier on the raw SMART counters, the
drive model and capacity, and each counter's change over the last day and week (a
reallocated-sector count that *grows* matters more than one that is merely high).
Evaluation never splits random rows, which would leak a drive's own future into its
past: it splits by time (train on early days, test on later ones, with the training
labels that would peek past the cut removed) or by drive.

Failures are rare (about one drive-day in 7,000 is within 72 h of a failure), so accuracy
is meaningless; the report gives precision, recall and the area under the
precision-recall curve, beside the usual rule of thumb "any of SMART 5/187/197/198 > 0",
each with a 95 % bootstrap interval over test drives (45 test failures leave wide ones).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from novacron.errors import InputError, NotEnoughDataError
from novacron.extras import require
from novacron.forecasting._stats import FloatArray

__all__ = [
    "BASELINE_SMART",
    "DriveDays",
    "FailureReport",
    "Scores",
    "bootstrap_intervals",
    "evaluate_failure",
    "label_within",
]

IntArray = npt.NDArray[np.int64]

BASELINE_SMART = (5, 187, 197, 198)
_TREND_SMART = (5, 187, 197, 198, 1)
_NEGATIVE_RATE = 0.1  # share of healthy training rows kept: positives are ~0.05 % of rows
BOOTSTRAP_SAMPLES = 200


@dataclass(frozen=True, slots=True)
class DriveDays:
    """One row per drive per day. ``day`` counts days, ``drive``/``model`` are integer codes,
    ``smart`` is ``(rows, len(smart_ids))`` raw values with NaN where not reported."""

    day: IntArray
    drive: IntArray
    model: IntArray
    capacity: FloatArray
    failure: IntArray
    smart: FloatArray
    smart_ids: tuple[int, ...]

    def __post_init__(self) -> None:
        n = self.day.size
        for name in ("drive", "model", "capacity", "failure"):
            if getattr(self, name).shape != (n,):
                raise InputError(f"has {getattr(self, name).shape[0]} rows, expected {n}", where=name)
        if self.smart.shape != (n, len(self.smart_ids)):
            raise InputError(f"shape {self.smart.shape} does not match the rows and ids", where="smart")


@dataclass(frozen=True, slots=True)
class Scores:
    """Precision/recall at a threshold and the area under the precision-recall curve.

    ``precision``: share of alarms (drive-days flagged) followed by a failure within the
    horizon; ``recall``: share of failures with at least one alarm in the horizon before
    them; ``row_recall``: share of the positive drive-days flagged.
    """

    precision: float
    recall: float
    row_recall: float
    auc_pr: float
    alarms: int
    # 95 % percentile-bootstrap intervals (resampling test drives), by metric name.
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class FailureReport:
    """Model and baseline on the same test rows."""

    horizon_h: float
    split: str
    train_rows: int
    test_rows: int
    test_failures: int
    threshold: float
    model: Scores
    baseline: Scores
    feature_names: tuple[str, ...] = field(default=())


def label_within(dd: DriveDays, horizon_h: float) -> IntArray:
    """1 for rows whose drive fails within ``horizon_h`` hours after the row's day.

    A failure is recorded on the drive's last day ``F``; the row of day ``d`` is positive
    when ``0 <= F - d <= horizon_h / 24``.
    """
    fail_day = np.full(int(dd.drive.max()) + 1, np.iinfo(np.int64).max // 2, dtype=np.int64)
    failed = dd.failure == 1
    fail_day[dd.drive[failed]] = dd.day[failed]
    lead = fail_day[dd.drive] - dd.day
    return ((lead >= 0) & (lead <= horizon_h / 24.0)).astype(np.int64)


def _lagged(dd: DriveDays, order: IntArray, values: FloatArray, lag_days: int) -> FloatArray:
    """Change of ``values`` since the same drive's row ``lag_days`` days earlier (NaN if none)."""
    key = dd.drive[order] * 100_000 + dd.day[order]
    want = dd.drive[order] * 100_000 + dd.day[order] - lag_days
    pos = np.searchsorted(key, want)
    pos = np.clip(pos, 0, key.size - 1)
    found = key[pos] == want
    out = np.full(values.size, np.nan)
    sorted_vals = values[order]
    out[order[found]] = sorted_vals[found] - sorted_vals[pos[found]]
    return out


def features(dd: DriveDays) -> tuple[FloatArray, tuple[str, ...]]:
    """The feature matrix: SMART raws, model code, capacity, and 1/7-day SMART changes.

    Counters no drive reports (all NaN) are left out: they carry nothing.
    """
    order = np.lexsort((dd.day, dd.drive)).astype(np.int64)
    reported = [j for j in range(len(dd.smart_ids)) if np.isfinite(dd.smart[:, j]).any()]
    cols: list[FloatArray] = [dd.smart[:, j] for j in reported]
    names = [f"smart_{dd.smart_ids[j]}_raw" for j in reported]
    cols += [dd.model.astype(np.float64), dd.capacity]
    names += ["model", "capacity_bytes"]
    for j in reported:
        if dd.smart_ids[j] not in _TREND_SMART:
            continue
        for lag in (1, 7):
            cols.append(_lagged(dd, order, dd.smart[:, j], lag))
            names.append(f"smart_{dd.smart_ids[j]}_delta_{lag}d")
    return np.column_stack(cols), tuple(names)


def _baseline_score(dd: DriveDays) -> FloatArray:
    """Sum of the baseline counters (NaN as 0): > 0 is the rule, the size ranks for AUC-PR."""
    idx = [dd.smart_ids.index(s) for s in BASELINE_SMART if s in dd.smart_ids]
    if not idx:
        raise InputError("needs at least one of SMART 5/187/197/198", where="smart")
    return np.asarray(np.nansum(dd.smart[:, idx], axis=1), dtype=np.float64)


def _split(dd: DriveDays, split: str, horizon_h: float, seed: int) -> tuple[IntArray, IntArray]:
    """Row indices of train and test; time splits drop training rows whose label peeks past the cut."""
    if split == "time":
        days = np.unique(dd.day)
        cut = days[int(0.7 * days.size)]
        # A training label must be knowable at the cut: its whole horizon lies before it.
        train = np.flatnonzero(dd.day + horizon_h / 24.0 < cut)
        return train, np.flatnonzero(dd.day >= cut)
    if split == "drive":
        drives = np.unique(dd.drive)
        test_drives = np.random.default_rng(seed).choice(drives, size=int(0.3 * drives.size), replace=False)
        in_test = np.isin(dd.drive, test_drives)
        return np.flatnonzero(~in_test), np.flatnonzero(in_test)
    raise InputError(f"must be 'time' or 'drive', got {split!r}", where="split")


def _sklearn(part: str) -> Any:
    """A scikit-learn submodule (heavy, ``forecast`` extra): imported only when training or scoring."""
    return require(f"sklearn.{part}", feature="failure prediction")


def score(dd: DriveDays, rows: IntArray, y: IntArray, prob: FloatArray, threshold: float) -> Scores:
    """Scores of ``prob`` on ``rows`` (``y`` and ``prob`` are indexed like ``rows``)."""
    average_precision_score = _sklearn("metrics").average_precision_score

    alarm = prob >= threshold
    positives = y == 1
    failed = rows[(dd.failure[rows] == 1)]
    caught = 0
    if failed.size:
        flagged_drives = np.unique(dd.drive[rows[alarm & positives]])
        caught = int(np.isin(dd.drive[failed], flagged_drives).sum())
    return Scores(
        precision=float(np.mean(positives[alarm])) if alarm.any() else 0.0,
        recall=caught / failed.size if failed.size else 0.0,
        row_recall=float(np.mean(alarm[positives])) if positives.any() else 0.0,
        auc_pr=float(average_precision_score(y, prob)) if positives.any() else 0.0,
        alarms=int(alarm.sum()),
        intervals=bootstrap_intervals(dd, rows, y, prob, threshold),
    )


def bootstrap_intervals(
    dd: DriveDays,
    rows: IntArray,
    y: IntArray,
    prob: FloatArray,
    threshold: float,
    *,
    samples: int = BOOTSTRAP_SAMPLES,
    seed: int = 0,
) -> dict[str, tuple[float, float]]:
    """95 % intervals of precision, recall and AUC-PR, resampling whole test drives.

    A drive's days are not independent (one failing drive contributes several positive
    rows), so the bootstrap draws drives with replacement and weights each row by how
    often its drive was drawn: a cluster bootstrap.
    """
    from sklearn.metrics import average_precision_score  # noqa: PLC0415 - heavy, only when training

    drives, code = np.unique(dd.drive[rows], return_inverse=True)
    alarm = prob >= threshold
    n = drives.size
    alarms = np.bincount(code, weights=alarm, minlength=n)
    true_alarms = np.bincount(code, weights=alarm & (y == 1), minlength=n)
    failed = np.bincount(code, weights=dd.failure[rows] == 1, minlength=n) > 0
    caught = failed & (true_alarms > 0)
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {"precision": [], "recall": [], "auc_pr": []}
    for _ in range(samples):
        w = np.bincount(rng.integers(0, n, n), minlength=n).astype(np.float64)
        if (w * alarms).sum() > 0:
            draws["precision"].append(float((w * true_alarms).sum() / (w * alarms).sum()))
        if (w * failed).sum() > 0:
            draws["recall"].append(float((w * caught).sum() / (w * failed).sum()))
        row_w = w[code]
        if (row_w * y).sum() > 0:
            draws["auc_pr"].append(float(average_precision_score(y, prob, sample_weight=row_w)))
    return {k: (float(np.quantile(v, 0.025)), float(np.quantile(v, 0.975))) for k, v in draws.items() if v}


def _fit(x: FloatArray, y: IntArray, seed: int) -> object:
    """Gradient boosting on all positives and a sample of negatives (for speed)."""
    HistGradientBoostingClassifier = _sklearn("ensemble").HistGradientBoostingClassifier  # noqa: N806

    rng = np.random.default_rng(seed)
    keep = (y == 1) | (rng.random(y.size) < _NEGATIVE_RATE)
    model = HistGradientBoostingClassifier(
        max_iter=200,
        learning_rate=0.05,
        max_leaf_nodes=15,
        min_samples_leaf=40,
        l2_regularization=1.0,
        random_state=seed,
    )
    model.fit(x[keep], y[keep])
    return model


def _probability(model: object, x: FloatArray) -> FloatArray:
    """Probabilities corrected for the negative sampling (odds scale by the keep rate)."""
    p = np.asarray(model.predict_proba(x)[:, 1], dtype=np.float64)  # type: ignore[attr-defined]
    odds = p / np.maximum(1.0 - p, 1e-12) * _NEGATIVE_RATE
    return odds / (1.0 + odds)


def _best_f1_threshold(y: IntArray, prob: FloatArray) -> float:
    precision_recall_curve = _sklearn("metrics").precision_recall_curve

    precision, recall, thresholds = precision_recall_curve(y, prob)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    return float(thresholds[int(np.argmax(f1[:-1]))]) if thresholds.size else 0.5


def evaluate_failure(dd: DriveDays, *, horizon_h: float = 72.0, split: str = "time", seed: int = 0) -> FailureReport:
    """Train on one part, test on the other, and score model and baseline alike.

    The alarm threshold is chosen before the test rows are seen: the training part is cut
    again (by time or by drive, like the outer split), a model fitted on its first part
    picks the F1-best threshold on its second, and the final model is refitted on the
    whole training part.
    """
    if horizon_h <= 0:
        raise InputError(f"must be positive, got {horizon_h:g}", where="horizon_h")
    y = label_within(dd, horizon_h)
    x, names = features(dd)
    train, test = _split(dd, split, horizon_h, seed)
    if y[train].sum() < 10 or y[test].sum() < 1:
        raise NotEnoughDataError(
            f"not enough failures: need 10 positive training rows and 1 test row, "
            f"got {int(y[train].sum())} and {int(y[test].sum())}"
        )
    inner = _subset(dd, train)
    fit_rows, val_rows = _split(inner, split, horizon_h, seed + 1)
    inner_model = _fit(x[train][fit_rows], y[train][fit_rows], seed)
    threshold = _best_f1_threshold(y[train][val_rows], _probability(inner_model, x[train][val_rows]))
    model = _fit(x[train], y[train], seed)
    prob = _probability(model, x[test])
    base = _baseline_score(dd)[test]
    return FailureReport(
        horizon_h=horizon_h,
        split=split,
        train_rows=int(train.size),
        test_rows=int(test.size),
        test_failures=int(dd.failure[test].sum()),
        threshold=threshold,
        model=score(dd, test, y[test], prob, threshold),
        baseline=score(dd, test, y[test], base, np.nextafter(0.0, 1.0)),
        feature_names=names,
    )


def _subset(dd: DriveDays, rows: IntArray) -> DriveDays:
    return DriveDays(
        day=dd.day[rows],
        drive=dd.drive[rows],
        model=dd.model[rows],
        capacity=dd.capacity[rows],
        failure=dd.failure[rows],
        smart=dd.smart[rows],
        smart_ids=dd.smart_ids,
    )
