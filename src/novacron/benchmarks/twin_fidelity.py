"""Fidelity of the twin's demo-fleet model against real processes.

The model's parameters are read from the demo fleet's own configuration (its health
check's interval, timeout and failure threshold; the prober's expedited interval; the
exit watch) and from component measurements taken just before the comparison (how long
a demo service takes from exec to its first ``200``, and from SIGTERM to exit). They
are never fitted to the healing benchmark they are compared with. The comparison is of
the model's mean with the benchmark's median, per fault kind.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from novacron.demo.fleet import demo_spec
from novacron.errors import InputError
from novacron.sensors.probes import EXPEDITED_INTERVAL_S
from novacron.settings import HttpCheck
from novacron.twin.fidelity import DemoFleetParams, predict_mttx

__all__ = ["compare_with_bench", "demo_fleet_params", "run_fidelity_bench"]

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


def run_fidelity_bench(*, faults: int = 20, startup_runs: int = 20) -> dict[str, Any]:
    """Measure start/stop, run the real healing benchmark, and compare with the model."""
    from novacron.benchmarks.healing import run_healing_bench
    from novacron.demo.startup import measure_startup

    startup = measure_startup(startup_runs)
    params = demo_fleet_params(startup)
    healing = run_healing_bench(faults=faults, kinds=["crash", "hang"])
    healing.pop("workdir", None)
    return {
        "params": {name: getattr(params, name) for name in params.__dataclass_fields__},
        "startup": startup,
        "healing": healing,
        "comparison": compare_with_bench(params, healing),
    }
