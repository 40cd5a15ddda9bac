"""``novacron bench forecast``: exhaustion, capacity and failure prediction against targets.

Exhaustion (targets: median |ETA error| <= 15 % of the true remaining time, leak
precision and recall >= 0.95, <= 1 false alarm per 1,000 steps):

* leaks — synthetic linear, step, sawtooth-under-GC and noisy leaks; the two reference
  traces with a real run-up (Alibaba ``net_in``/``net_out``, capacity line at the level
  their daily mean reaches at 90 % of the trace); flat reference traces with a linear leak
  added. Each is judged once, when 20 % of its run-up has been observed.
* healthy — synthetic flat noise, GC sawtooth and periodic clean-ups, and the flat
  reference traces as they are (limit 1.5 x their maximum). Each is judged at 20/40/60/
  80/100 % of its length (precision) and streamed (false alarms = alarm onsets per 1,000
  steps; the tracker is asked every ``_STRIDE`` steps).

Capacity: each reference trace column, last 20 % held out (see
:mod:`novacron.forecasting.backtest`). Failure: Backblaze drive days, split by time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from novacron.benchmarks.forecast_data import TRACE_CONFIG, TRACES, read_drive_days, read_series
from novacron.forecasting import lstm
from novacron.forecasting._stats import FloatArray
from novacron.forecasting.backtest import backtest_capacity
from novacron.forecasting.exhaustion import ExhaustionConfig, assess_exhaustion
from novacron.forecasting.failure import evaluate_failure
from novacron.forecasting.synthetic import LEAK_KINDS, SAFE_KINDS, make_series

__all__ = ["TRACE_CONFIG", "run"]

_DAY = 86_400.0
_STEP = 300.0
_SEEDS = range(8)
_STRIDE = 5
_OBSERVED = 0.2
_RUN_UP = (("alibaba2018", "net_in"), ("alibaba2018", "net_out"))
_FLAT = (
    ("google2019", "avg_cpu"),
    ("google2019", "avg_mem"),
    ("google2019", "avg_assigned_mem"),
    ("azure_v2", "cpu_usage"),
    ("azure_v2", "assigned_mem"),
)
# Traces have a daily cycle: windows shorter than a day would read a morning as a leak.
# Cluster aggregates have no collector; their dips of a few per cent are load, not clean-ups.
_SYNTH_CONFIG = ExhaustionConfig(horizon_s=30 * _DAY)


class _Tally:
    """Counts for leak precision/recall, ETA errors and streamed false alarms."""

    def __init__(self) -> None:
        self.tp = self.fn = self.fp = self.tn = 0
        self.eta_errors: list[float] = []
        self.onsets = 0
        self.steps = 0

    def leak(self, t: FloatArray, y: FloatArray, limit: float, truth_at: float, cfg: ExhaustionConfig) -> None:
        verdict = assess_exhaustion(t, y, limit, cfg)
        if not verdict.leak:
            self.fn += 1
            return
        self.tp += 1
        remaining = truth_at - float(t[-1])
        self.eta_errors.append(abs(verdict.eta_s - remaining) / remaining)

    def healthy(self, t: FloatArray, y: FloatArray, limit: float, cfg: ExhaustionConfig) -> None:
        for frac in (0.2, 0.4, 0.6, 0.8, 1.0):
            k = max(2, int(frac * t.size))
            if assess_exhaustion(t[:k], y[:k], limit, cfg).leak:
                self.fp += 1
            else:
                self.tn += 1
        alarmed = False
        for k in range(cfg.min_points, t.size + 1, _STRIDE):
            leak = assess_exhaustion(t[:k], y[:k], limit, cfg).leak
            self.onsets += int(leak and not alarmed)
            alarmed = leak
        self.steps += t.size

    def result(self) -> dict[str, Any]:
        return {
            "median_abs_eta_error": float(np.median(self.eta_errors)) if self.eta_errors else None,
            "leak_precision": self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0,
            "leak_recall": self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0,
            "false_alarms_per_1000": 1000.0 * self.onsets / self.steps if self.steps else 0.0,
            "leak_cases": self.tp + self.fn,
            "healthy_checks": self.fp + self.tn,
            "healthy_steps": self.steps,
        }


def _trace(data_dir: Path, key: str, column: str) -> FloatArray:
    _, values = read_series(data_dir / "traces" / TRACES[key], column)
    return values


def _smooth(y: FloatArray, width: int) -> FloatArray:
    """Centred moving average (NaN where the window does not fit)."""
    out = np.full(y.size, np.nan)
    c = np.convolve(y, np.ones(width) / width, mode="valid")
    out[width // 2 : width // 2 + c.size] = c
    return out


def _exhaustion(data_dir: Path) -> dict[str, Any]:
    synth, traces = _Tally(), _Tally()
    for seed in _SEEDS:
        for kind in LEAK_KINDS:
            s = make_series(kind, seed=seed)
            k = int(_OBSERVED * s.t.size)
            synth.leak(s.t[:k], s.y[:k], s.limit, float(s.exhausted_at or 0.0), _SYNTH_CONFIG)
        for kind in SAFE_KINDS:
            s = make_series(kind, seed=seed)
            synth.healthy(s.t, s.y, s.limit, _SYNTH_CONFIG)
    per_day = int(_DAY / _STEP)
    for key, column in _RUN_UP:
        y = _trace(data_dir, key, column)
        t = np.arange(y.size, dtype=np.float64) * _STEP
        level = _smooth(y, per_day)
        line = float(level[int(0.9 * y.size)])
        cross = int(np.flatnonzero(level >= line)[0])
        k = int(_OBSERVED * cross)
        traces.leak(t[:k], y[:k], line, float(t[cross]), TRACE_CONFIG)
    for key, column in _FLAT:
        y = _trace(data_dir, key, column)
        t = np.arange(y.size, dtype=np.float64) * _STEP
        traces.healthy(t, y, 1.5 * float(np.max(y)), TRACE_CONFIG)
        for start in (0, y.size // 2):
            part = y[start : start + 10 * per_day]
            base = float(np.median(part))
            rise = 0.5 * base  # the leak adds half the usual level over the slice
            leaked = part + rise * np.arange(part.size) / (part.size - 1)
            tt = t[: part.size]
            k = int(_OBSERVED * part.size)
            traces.leak(tt[:k], leaked[:k], base + rise, float(tt[-1]), TRACE_CONFIG)
    both = _Tally()
    for tally in (synth, traces):
        both.tp, both.fn, both.fp, both.tn = (
            both.tp + tally.tp,
            both.fn + tally.fn,
            both.fp + tally.fp,
            both.tn + tally.tn,
        )
        both.eta_errors += tally.eta_errors
        both.onsets += tally.onsets
        both.steps += tally.steps
    return {**both.result(), "synthetic": synth.result(), "traces": traces.result()}


def _capacity(data_dir: Path) -> dict[str, Any]:
    per_series: dict[str, dict[str, Any]] = {}
    members: dict[str, list[float]] = {}
    covered = points = 0.0
    for key, rel in TRACES.items():
        header = (data_dir / "traces" / rel).open().readline().strip().split(",")
        for column in (c for c in header if c != "timestamp"):
            b = backtest_capacity(_trace(data_dir, key, column), interval_s=_STEP)
            per_series[f"{key}/{column}"] = {
                "model": b.model,
                "mase": b.relative_mae,
                "mase_in_sample_scale": b.mase,
                "coverage_80": b.coverage_80,
                "horizon_days": b.horizon_days,
            }
            covered += b.coverage_80 * b.points
            points += b.points
            for name, value in {**b.members, "combination": b.relative_mae}.items():
                members.setdefault(name, []).append(value)
    return {
        "per_series": per_series,
        "max_mase": max(s["mase"] for s in per_series.values()),
        "coverage_80": covered / points,
        # Each forecaster alone on the same hold-outs (MAE relative to seasonal naive).
        "forecasters": {
            name: {"mean_mase": float(np.mean(v)), "max_mase": float(np.max(v)), "series": len(v)}
            for name, v in members.items()
        },
        "lstm_available": lstm.available(),
    }


def _failure(data_dir: Path) -> dict[str, Any]:
    files = sorted((data_dir / "backblaze").glob("*.csv.gz"))
    report = evaluate_failure(read_drive_days(files[0]), horizon_h=72.0, split="time")

    def scores(s: Any) -> dict[str, Any]:
        ci = s.intervals
        return {
            "precision_72h": s.precision,
            "recall_72h": s.recall,
            "row_recall_72h": s.row_recall,
            "auc_pr": s.auc_pr,
            "alarms": s.alarms,
            # 95 % bootstrap intervals over test drives.
            "precision_72h_ci": ci.get("precision"),
            "recall_72h_ci": ci.get("recall"),
            "auc_pr_ci": ci.get("auc_pr"),
        }

    return {
        **scores(report.model),
        "baseline": scores(report.baseline),
        "split": report.split,
        "test_failures": report.test_failures,
        "test_rows": report.test_rows,
    }


def run(data_dir: Path, *, figures: Path | None = None) -> dict[str, Any]:
    """Run all three parts; optionally write the documentation figures into ``figures``."""
    result: dict[str, Any] = {
        "exhaustion": _exhaustion(data_dir),
        "capacity": _capacity(data_dir),
        "failure": _failure(data_dir),
    }
    if figures is not None:
        from novacron.benchmarks.forecast_figures import write_figures

        result["figures"] = [str(p) for p in write_figures(data_dir, figures)]
    return result
