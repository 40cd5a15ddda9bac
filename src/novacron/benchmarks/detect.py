"""Throughput of every registered detector: streaming (score_one + learn_one) and batch.

Streaming is timed on the Python loop a controller would run; batch on ``score_many``.
Slow detectors are stopped after ``budget_s`` seconds per mode and their rate is computed
from the points actually processed, which the result reports next to the rate. Rates are
given per wall-clock second (``*_per_s``) and per CPU second (``*_per_cpu_s``): streaming
runs on the timing thread, so its CPU time is that thread's; a batch may run on two
threads (the compiled ensemble's), so its CPU time is the whole process's, across threads.
The report names the numba version the compiled kernels ran on (``null`` without the
``fast`` extra), and for the ensemble which path was timed and how many threads its
batches may use (``batch_threads``).
"""

from __future__ import annotations

import importlib.metadata
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from novacron.detectors import REGISTRY, _fused, _fused_batch
from novacron.detectors.base import Detector, FloatArray
from novacron.detectors.ensemble import Ensemble
from novacron.detectors.pipeline import series_detector

__all__ = ["run"]

_CHUNK = 10_000
_WARM = 500
# Detectors are built as the NAB runner builds them for 5-minute data: the ensemble is the
# default pipeline (general_ensemble, with the rank opinion), seasons are a day and a week.
_STEP_S = 300.0


def _series(name: str, points: int, seed: int) -> FloatArray:
    rng = np.random.default_rng(seed)
    if name == "phi_accrual":  # heartbeat arrival times, ~1 s apart
        return np.cumsum(rng.normal(1.0, 0.05, points).clip(0.5))
    if name == "slo_burn":  # per-step error ratios
        return rng.beta(1.0, 2000.0, points)
    values = rng.normal(100.0, 5.0, points) + 10.0 * np.sin(np.arange(points) * 2 * np.pi / 288)
    spikes = rng.random(points) < 0.001
    values[spikes] += rng.normal(0.0, 60.0, int(spikes.sum()))
    return values


def _warm(name: str, data: FloatArray) -> Detector:
    """A fresh detector whose compiled kernels (if any) are loaded: compiling is not scoring."""
    series_detector(name, _STEP_S).score_many(data[:_WARM])
    warm = series_detector(name, _STEP_S)
    warm.score_one(float(data[0]))
    warm.learn_one(float(data[0]))
    return series_detector(name, _STEP_S)


class _Rates:
    """Points per wall-clock second and per CPU second (``cpu``: a clock of CPU time).

    On a shared machine the wall-clock rate says how busy the machine was as much as how
    fast the code is; the CPU rate is the per-core figure (the work never waits on I/O).
    """

    def __init__(self, cpu: Callable[[], float]) -> None:
        self.clock = cpu
        self.wall = time.perf_counter()
        self.cpu = cpu()

    def elapsed(self) -> float:
        return time.perf_counter() - self.wall

    def result(self, done: int) -> tuple[float, float, int]:
        return done / self.elapsed(), done / max(self.clock() - self.cpu, 1e-9), done


def _streaming(det: Detector, data: FloatArray, budget_s: float) -> tuple[float, float, int]:
    score, learn = det.score_one, det.learn_one
    done = 0
    clock = _Rates(time.thread_time)
    for lo in range(0, data.shape[0], _CHUNK):
        for x in data[lo : lo + _CHUNK].tolist():
            score(x)
            learn(x)
        done = min(lo + _CHUNK, data.shape[0])
        if clock.elapsed() > budget_s:
            break
    return clock.result(done)


def _batch(det: Detector, data: FloatArray, budget_s: float) -> tuple[float, float, int]:
    done = 0
    step = max(_CHUNK, data.shape[0] // 10)
    clock = _Rates(time.process_time)  # every thread of the process: a batch may use two
    for lo in range(0, data.shape[0], step):
        det.score_many(data[lo : lo + step])
        done = min(lo + step, data.shape[0])
        if clock.elapsed() > budget_s:
            break
    return clock.result(done)


def run(*, points: int = 1_000_000, names: Sequence[str] | None = None, budget_s: float = 30.0) -> dict[str, Any]:
    """``{"points": n, "load_average_1m": l, "detectors": {name: {"streaming_points_per_s", ...}}}``."""
    chosen = list(names) if names else list(REGISTRY)
    out: dict[str, dict[str, Any]] = {}
    for name in chosen:
        data = _series(name, points, seed=7)
        s_rate, s_cpu, s_n = _streaming(_warm(name, data), data, budget_s)
        b_rate, b_cpu, b_n = _batch(_warm(name, data), data, budget_s)
        out[name] = {
            "streaming_points_per_s": round(s_rate),
            "batch_points_per_s": round(b_rate),
            "streaming_points_per_cpu_s": round(s_cpu),
            "batch_points_per_cpu_s": round(b_cpu),
            "streaming_points_measured": s_n,
            "batch_points_measured": b_n,
        }
        det = series_detector(name, _STEP_S)
        if isinstance(det, Ensemble):
            out[name]["compiled"] = det.compiled
            out[name]["path"] = "compiled" if det.compiled else "object"
            out[name]["batch_threads"] = _fused_batch.batch_threads(det.batch_threads) if det.compiled else 1
    return {
        "points": points,
        "load_average_1m": round(os.getloadavg()[0], 2),
        "numba": _numba_version(),
        "detectors": out,
    }


def _numba_version() -> str | None:
    """The numba the compiled kernels use, or ``None`` (the ``fast`` extra is not installed)."""
    if not _fused.AVAILABLE:
        return None
    return importlib.metadata.version("numba")
