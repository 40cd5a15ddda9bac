"""Fidelity of the twin's demo-fleet model against real processes.

The probe parameters are read from the demo fleet's own configuration (its health check's
interval, timeout and failure threshold; the prober's expedited interval; the exit watch).
The repair's pieces are measured inside the running fleet: *calibration* runs of the
healing benchmark, one just before and one just after the compared run, are read back from
the controller's store, and each incident's timeline gives first observation → fault
record → action start → action end → verified. The model simulates the sum of those
pieces (plus the wait for the first probe) and its median is compared with the median of
a *separate* healing run; nothing is fitted to the run it is compared with. For contrast
the closed-form model is also evaluated with the service's start-up measured in isolation
(exec → first ``200``, SIGTERM → exit).
"""

from __future__ import annotations

import itertools
import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from novacron.demo.fleet import demo_spec
from novacron.errors import InputError
from novacron.sensors.probes import EXPEDITED_INTERVAL_S
from novacron.settings import HttpCheck
from novacron.store import Store
from novacron.twin.fidelity import DemoFleetParams, RepairSamples, predict_mttx, simulate_repair, summarise

from ._stats import percentiles

__all__ = [
    "CalibrationRun",
    "calibrate",
    "calibration_run",
    "compare_in_fleet",
    "compare_with_bench",
    "demo_fleet_params",
    "repair_pieces",
    "run_fidelity_bench",
]

_KINDS = ("crash", "hang")
_PIECES = ("record_s", "decision_s", "apply_s", "verify_s")
TARGET_RELATIVE_ERROR = 0.2

# Store commits between a fault and its action (incident, fault, timeline lines, diagnosis,
# status, audit, action claim) and after verification, ~0.12 ms each on SQLite in WAL mode,
# plus a structured log line per timeline event: about five milliseconds in all.
DECISION_S = 0.005


def demo_fleet_params(startup: dict[str, Any]) -> DemoFleetParams:
    """The model's parameters from the demo spec and a ``measure_startup`` result."""
    spec = demo_spec(20_000, Path("novacron-demo"))
    checks = [c for t in spec.targets for c in t.checks if isinstance(c, HttpCheck)]
    if not checks:
        raise InputError("the demo fleet has no HTTP check", where="demo_spec")
    check = checks[0]
    try:
        start_ms = float(startup["exec_to_first_200_ms"]["p50"])
        stop_ms = float(startup["sigterm_to_exit_ms"]["p50"])
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"not a measure_startup result: {exc}", where="startup") from exc
    return DemoFleetParams(
        probe_interval_s=check.interval_s,
        probe_timeout_s=check.timeout_s,
        failure_threshold=check.failures,
        success_threshold=1,
        exit_watch=True,  # the process actuator watches every child through a pidfd
        exit_poll_s=0.0,
        decision_s=DECISION_S,
        stop_s=stop_ms / 1000.0,
        start_s=start_ms / 1000.0,
        verify_interval_s=EXPEDITED_INTERVAL_S,
    )


def compare_with_bench(params: DemoFleetParams, healing: dict[str, Any]) -> dict[str, Any]:
    """Predicted (mean) vs measured (p50) MTTD and MTTR per kind, with absolute and relative error."""
    rows: dict[str, Any] = {}
    for kind in ("crash", "hang"):
        if kind not in healing.get("mttr_ms", {}):
            continue
        mttd, mttr = predict_mttx(kind, params)
        row: dict[str, Any] = {}
        for name, predicted in (("mttd", mttd), ("mttr", mttr)):
            measured = float(healing[f"{name}_ms"][kind]["p50"])
            pred_ms = round(predicted * 1000, 1)
            row[name] = {
                "predicted_ms": pred_ms,
                "measured_p50_ms": measured,
                "error_ms": round(pred_ms - measured, 1),
                "relative_error": round((pred_ms - measured) / measured, 3) if measured > 0 else None,
            }
        rows[kind] = row
    return rows


def repair_pieces(store: Store, kind: str) -> dict[str, list[float]]:
    """Per-incident durations of ``kind``'s repairs, from the store's incidents and timelines.

    Only resolved, non-preventive incidents healed by exactly one action count: the
    scenario the model describes (one restart, verified).
    """
    pieces: dict[str, list[float]] = {name: [] for name in _PIECES}
    for inc in store.incidents(limit=1_000_000):
        if inc.kind.value != kind or inc.preventive or inc.resolved_at is None:
            continue
        events = store.timeline(inc.id)
        started = [e.time for e in events if e.kind == "action_started"]
        finished = [e.time for e in events if e.kind == "action_finished"]
        if len(started) != 1 or len(finished) != 1:
            continue
        # ``since`` is when the first observation that saw the fault began (the exit for a crash).
        marks = (inc.since, inc.opened_at, started[0], finished[0], inc.resolved_at)
        for name, (a, b) in zip(_PIECES, itertools.pairwise(marks), strict=True):
            pieces[name].append(max(0.0, b - a))
    return pieces


def _samples(pieces: dict[str, list[float]], notice_s: float) -> RepairSamples:
    record, decision, apply, verify = (tuple(pieces[name]) for name in _PIECES)
    return RepairSamples(record, decision, apply, verify, notice_s=notice_s)


@dataclass(frozen=True, slots=True)
class CalibrationRun:
    """The repair pieces of one calibration run of the healing benchmark."""

    pieces: dict[str, dict[str, list[float]]]  # kind → piece name → seconds per incident
    notice_s: float  # the run's crash MTTD median: fault → exit seen
    injected: int
    healed: int
    # The run's own MTTR medians per kind: reported as the run-to-run noise floor, never modelled.
    mttr_p50_ms: dict[str, float]


def calibration_run(faults: int) -> CalibrationRun:
    """Run the healing benchmark once and read each kind's repair pieces from its store."""
    from novacron.benchmarks.healing import run_healing_bench

    run = run_healing_bench(faults=faults, kinds=list(_KINDS))
    workdir = Path(run.pop("workdir"))
    store = Store.open(f"sqlite:///{workdir / 'bench.db'}")
    try:
        pieces = {kind: repair_pieces(store, kind) for kind in _KINDS}
    finally:
        store.close()
        shutil.rmtree(workdir, ignore_errors=True)
    notice_ms = float(run["mttd_ms"]["crash"]["p50"])
    notice_s = notice_ms / 1000.0 if math.isfinite(notice_ms) else 0.0
    medians = {kind: float(run["mttr_ms"][kind]["p50"]) for kind in _KINDS}
    return CalibrationRun(pieces, notice_s, int(run["injected"]), int(run["healed"]), medians)


def calibrate(runs: list[CalibrationRun]) -> tuple[dict[str, RepairSamples], dict[str, Any]]:
    """Pool calibration runs into samples per kind, with a JSON-ready summary (ms)."""
    if not runs:
        raise InputError("at least one calibration run is needed", where="runs")
    pooled = {kind: {name: [v for r in runs for v in r.pieces[kind][name]] for name in _PIECES} for kind in _KINDS}
    notice_s = sum(r.notice_s for r in runs) / len(runs)
    samples = {kind: _samples(pooled[kind], notice_s if kind == "crash" else 0.0) for kind in _KINDS}
    summary = {
        "runs": len(runs),
        "injected": sum(r.injected for r in runs),
        "healed": sum(r.healed for r in runs),
        "crash_exit_notice_ms": round(notice_s * 1000, 2),
        "runs_mttr_p50_ms": {kind: [r.mttr_p50_ms[kind] for r in runs] for kind in _KINDS},
        "pieces_ms": {
            kind: {"n": len(pooled[kind]["verify_s"])}
            | {name.removesuffix("_s"): percentiles(pooled[kind][name], scale=1000) for name in _PIECES}
            for kind in _KINDS
        },
    }
    return samples, summary


def compare_in_fleet(
    params: DemoFleetParams, samples: dict[str, RepairSamples], healing: dict[str, Any], *, seed: int = 0
) -> dict[str, Any]:
    """Simulated (from calibrated pieces) vs measured MTTD and MTTR percentiles per kind."""
    rows: dict[str, Any] = {}
    for kind, kind_samples in samples.items():
        if kind not in healing.get("mttr_ms", {}):
            continue
        ttd, ttr = simulate_repair(kind, params, kind_samples, seed=seed)
        row: dict[str, Any] = {}
        for name, simulated in (("mttd", ttd), ("mttr", ttr)):
            predicted, measured = summarise(simulated), healing[f"{name}_ms"][kind]
            row[name] = {"predicted_ms": predicted, "measured_ms": measured} | _errors(predicted, measured)
        rows[kind] = row
    return rows


def _errors(predicted: dict[str, float], measured: dict[str, float]) -> dict[str, Any]:
    def rel(q: str) -> float | None:
        m = float(measured[q])
        return round((predicted[q] - m) / m, 3) if m > 0 and math.isfinite(m) else None

    p50 = rel("p50")
    return {
        "p50_error_ms": round(predicted["p50"] - float(measured["p50"]), 1),
        "relative_error_p50": p50,
        "relative_error_p95": rel("p95"),
        "within_target": None if p50 is None else abs(p50) <= TARGET_RELATIVE_ERROR,
    }


def run_fidelity_bench(*, faults: int = 20, startup_runs: int = 20, calibration_faults: int = 32) -> dict[str, Any]:
    """Calibrate on healing runs before and after a separate healing run, predict it, compare.

    The calibration brackets the compared run in time (one run before, one after, pooled)
    so a drift in the machine's load between them biases the parameters less; no number
    from the compared run enters the model.
    """
    from novacron.benchmarks.healing import run_healing_bench
    from novacron.demo.startup import measure_startup

    if calibration_faults < 1:
        raise InputError("must be >= 1", where="calibration_faults")
    load_before = os.getloadavg()
    startup = measure_startup(startup_runs)
    params = demo_fleet_params(startup)
    before = calibration_run(calibration_faults)
    healing = run_healing_bench(faults=faults, kinds=list(_KINDS))
    shutil.rmtree(healing.pop("workdir"), ignore_errors=True)
    after = calibration_run(calibration_faults)
    samples, calibration = calibrate([before, after])
    return {
        "params": {name: getattr(params, name) for name in params.__dataclass_fields__},
        "startup_isolated": startup,
        "calibration": calibration,
        "healing": healing,
        "comparison": compare_in_fleet(params, samples, healing),
        "comparison_formula_isolated_start": compare_with_bench(params, healing),
        "load_avg_1m": {"before": round(load_before[0], 2), "after": round(os.getloadavg()[0], 2)},
    }
