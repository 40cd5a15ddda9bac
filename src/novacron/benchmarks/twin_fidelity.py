"""``novacron bench twin-fidelity``: the twin's predicted MTTD/MTTR against a separate real run.

1. *Calibration*: the real demo fleet under the real controller takes crash and hang
   faults in two runs, one before and one after the compared run; their stores give the
   repair timings (:func:`~novacron.runtime.twinspec.measure_timings`).
2. *Twin*: :func:`~novacron.runtime.twinspec.twin_of` turns the demo spec into sim targets
   with those timings, and the same :class:`~novacron.runtime.controller.Controller`
   runs it on the twin's :class:`~novacron.twin.sim.Simulator` under simulated time, taking
   crash, hang and dependency faults: the prediction.
3. *Compared run*: a separate real run takes the same fault plan; nothing of it
   enters the twin. The result is the signed relative error of the predicted median
   MTTR (and MTTD) per fault kind: ``(predicted − measured) / measured``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from novacron.benchmarks._stats import percentiles
from novacron.demo.fleet import demo_spec, free_port_block
from novacron.errors import InputError
from novacron.runtime.controller import Controller
from novacron.runtime.faultrun import FaultPlan, FaultTimes, process_injector, run_plan, twin_injector
from novacron.runtime.simloop import run_simulated
from novacron.runtime.twinfleet import build_twin_simulator
from novacron.runtime.twinspec import TwinTimings, measure_timings, twin_of
from novacron.settings import FleetSpec, HttpCheck, TargetSpec
from novacron.store import Store
from novacron.telemetry import configure_logging
from novacron.twin.clock import SimClock

__all__ = ["TARGET_RELATIVE_ERROR", "fault_plan", "run_fidelity_bench"]

TARGET_RELATIVE_ERROR = 0.2
_LEAVES = ("gateway", "worker")  # nothing depends on them: a crash there measures one repair
_DEPENDENTS = ("auth", "catalog", "worker")  # each depends on db alone
_UPSTREAM = "db"
# Faults strike at a random point of the probes' 100 ms cycle, on both sides: the twin's
# probes keep a fixed phase, so without it every twin fault would meet the same offset.
_JITTER_S = 0.1


def fault_plan(per_kind: int, kinds: tuple[str, ...] = ("crash", "hang", "dependency")) -> list[FaultPlan]:
    """``per_kind`` faults of each kind, interleaved in blocks so load drift hits every kind alike."""
    plans: list[FaultPlan] = []
    for i in range(per_kind):
        for kind in kinds:
            if kind == "dependency":
                target = _DEPENDENTS[i % len(_DEPENDENTS)]
                plans.append(FaultPlan(kind, target, _UPSTREAM))
            else:
                target = _LEAVES[i % len(_LEAVES)]
                plans.append(FaultPlan(kind, target, target))
    return plans


def _through_upstreams(t: TargetSpec) -> TargetSpec:
    """Probe a dependent service's ``/`` (which calls its upstreams) rather than ``/health``.

    The demo's ``/health`` answers for the service alone, so an upstream outage would be
    invisible to the controller; ``/`` fails with it (502, or no answer while it hangs),
    which is what the twin's sim targets model.
    """
    if not t.depends_on:
        return t
    checks = [
        c.model_copy(update={"url": c.url.removesuffix("/health") + "/"}) if isinstance(c, HttpCheck) else c
        for c in t.checks
    ]
    return t.model_copy(update={"checks": checks})


def _bench_spec(workdir: Path) -> FleetSpec:
    spec = demo_spec(free_port_block(10), workdir)
    # Faults come every second or so: the flap and rate rails would rightly stop healing.
    flap = spec.policy.flap.model_copy(update={"threshold": 1_000_000})
    policy = spec.policy.model_copy(update={"flap": flap, "max_actions_per_target_per_hour": 1_000_000})
    return spec.model_copy(update={"policy": policy, "targets": [_through_upstreams(t) for t in spec.targets]})


Latencies = dict[str, tuple[float, float]]  # target → healthy answer time (p50, p99), seconds


async def _real(spec: FleetSpec, workdir: Path, plans: list[FaultPlan]) -> tuple[FaultTimes, Latencies]:
    controller = Controller(spec, workdir=workdir, store_url=f"sqlite:///{workdir / 'bench.db'}", seed=7)
    await controller.start()
    try:
        times = await run_plan(controller, process_injector(controller), plans, jitter_s=_JITTER_S)
        answers = controller.prober.answer_times(0.5, 0.99)
        return times, {target: (q[0], q[1]) for (target, _replica, _source), q in answers.items()}
    finally:
        await controller.stop()


def real_run(plans: list[FaultPlan], *, keep_store: bool = False) -> tuple[FaultTimes, Latencies, Path]:
    """The plan on the real demo fleet: its times, its probes' answer times per target, its workdir."""
    workdir = Path(tempfile.mkdtemp(prefix="novacron-fidelity-"))
    times, latencies = asyncio.run(_real(_bench_spec(workdir), workdir, plans))
    if not keep_store:
        shutil.rmtree(workdir, ignore_errors=True)
    return times, latencies, workdir


def twin_run(spec: FleetSpec, plans: list[FaultPlan]) -> FaultTimes:
    """The plan on the twin of ``spec``, through the real controller, in simulated time."""
    sim = build_twin_simulator(spec)
    clock = SimClock(sim)

    workdir = Path(tempfile.mkdtemp(prefix="novacron-twin-"))

    async def main() -> FaultTimes:
        controller = Controller(spec, clock=clock, twin=sim, seed=7, workdir=workdir)
        await controller.start()
        try:
            return await run_plan(controller, twin_injector(controller), plans, jitter_s=_JITTER_S)
        finally:
            await controller.stop()

    try:
        return run_simulated(main(), clock)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _calibrate(per_kind: int, compared: Callable[[], FaultTimes]) -> tuple[TwinTimings, FaultTimes]:
    """Calibration runs before and after the compared run; timings from their stores, pooled.

    Bracketing the compared run in time makes a drift of the machine's load between the
    runs bias the timings less; nothing of the compared run enters them. Each target's
    healthy answer times (median and 99th percentile) come from the calibration runs'
    probers, averaged over the two: the twin draws its answers from them, so its prober
    learns the timeouts the real one learned.
    """
    plan = fault_plan(max(1, per_kind // 2), ("crash", "hang"))
    _t1, lat_before, before = real_run(plan, keep_store=True)
    measured = compared()
    _t2, lat_after, after = real_run(plan, keep_store=True)
    latencies = {
        target: tuple(
            round(statistics.fmean(q), 5)
            for q in zip(*(r[target] for r in (lat_before, lat_after) if target in r), strict=True)
        )
        for target in lat_before.keys() | lat_after.keys()
    }
    pooled: Latencies = {t: (q[0], q[1]) for t, q in latencies.items()}
    stores = [Store.open(f"sqlite:///{d / 'bench.db'}") for d in (before, after)]
    try:
        median_answer = statistics.median(p50 for p50, _ in pooled.values()) if pooled else None
        timings = measure_timings(*stores, probe_latency_s=median_answer, latencies=pooled)
    finally:
        for store in stores:
            store.close()
        for d in (before, after):
            shutil.rmtree(d, ignore_errors=True)
    return timings, measured


def _rel(predicted: float | None, measured: float | None) -> float | None:
    if predicted is None or measured is None or measured <= 0:
        return None
    return round((predicted - measured) / measured, 3)


def compare(predicted: FaultTimes, measured: FaultTimes, kinds: tuple[str, ...]) -> dict[str, Any]:
    """Per kind: predicted and measured MTTD/MTTR percentiles (ms) and the signed relative p50 error."""
    out: dict[str, Any] = {"mttr_error": {}, "mttd_error": {}, "kinds": {}}
    for kind in kinds:
        row: dict[str, Any] = {}
        for name in ("mttd", "mttr"):
            p = percentiles(getattr(predicted, name).get(kind, []), scale=1000)
            m = percentiles(getattr(measured, name).get(kind, []), scale=1000)
            row[name] = {"predicted_ms": p, "measured_ms": m}
            out[f"{name}_error"][kind] = _rel(p["p50"], m["p50"])
        out["kinds"][kind] = row
    out["within_target"] = {k: v is not None and abs(v) <= TARGET_RELATIVE_ERROR for k, v in out["mttr_error"].items()}
    return out


def run_fidelity_bench(*, faults: int = 24, calibration_faults: int = 16, twin_faults: int = 200) -> dict[str, Any]:
    """Calibrate on one real run, predict with the twin, compare with another real run.

    ``faults`` is per kind in the compared real run, ``calibration_faults`` per kind over
    the two calibration runs; ``twin_faults`` per kind on the twin (simulated time: cheap,
    and a tighter prediction).
    """
    if min(faults, calibration_faults, twin_faults) < 1:
        raise InputError("must be >= 1", where="--faults/--calibration-faults/--twin-faults")
    kinds = ("crash", "hang", "dependency")
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="novacron-fidelity-log-") as logdir:
        with (Path(logdir) / "controller.log").open("w") as log:
            configure_logging(stream=log)
            timings, measured = _calibrate(calibration_faults, lambda: real_run(fault_plan(faults, kinds))[0])
            demo = _bench_spec(Path(logdir) / "twin")
            predicted = twin_run(twin_of(demo, timings, store_url="sqlite:///:memory:"), fault_plan(twin_faults, kinds))
        configure_logging(stream=sys.stderr)
    return {
        "timings": {
            "restart_s": timings.restart_s,
            "stop_s": timings.stop_s,
            "replace_s": timings.replace_s,
            "probe_latency_s": timings.probe_latency_s,
            "decide_s": timings.decide_s,
            "answer_ms": {t: [round(v * 1000, 1) for v in q] for t, q in sorted(timings.latencies.items())},
            "samples": timings.samples,
        },
        "twin": {"injected": predicted.injected, "healed": predicted.healed},
        "real": {"injected": measured.injected, "healed": measured.healed},
        **compare(predicted, measured, kinds),
        "target_relative_error": TARGET_RELATIVE_ERROR,
        "load_avg_1m": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
    }
