"""A parameterised model of the demo fleet's detection and repair times.

The demo fleet runs real processes probed every 100 ms. For each fault kind the model
predicts the mean time to detect (fault → declared) and to repair (fault → verified
healthy) from the timing parameters alone, so it can be set beside what
``novacron bench healing`` measures. :func:`simulate_mttx` runs the same scenario through
the twin's simulator as a Monte Carlo cross-check of the formulas.

Timeline of a repair, following the controller's mechanism: wait for the next probe
(uniform phase, mean interval/2); collect ``failure_threshold`` failures — a crashed
process is refused at once (or, with the exit watch, seen as a process exit with no
probing at all), while each probe of a hung one lasts the full timeout and the prober then
waits for the first tick of its grid after the timed-out probe ended, so consecutive
probes of a hung process are ``(floor(timeout/interval) + 1) · interval`` apart; decide
(store the incident, diagnose, plan, pass the safety gate); stop the process if it hangs
(SIGCONT + SIGTERM: it resumes and exits gracefully); start it and wait until it serves;
the restart expedites the replica's probes to ``verify_interval_s``, so the first good
probe comes on average half of that after the service is ready.

The fidelity benchmark (``novacron bench twin-fidelity``) no longer uses this closed form:
it runs the real controller on a twin of the demo fleet (see ``runtime/twinspec.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from novacron.errors import InputError
from novacron.twin.faults import TwinFault, parse_fault
from novacron.twin.healer import with_healer
from novacron.twin.params import HealerParams, PhysicsParams
from novacron.twin.sim import Simulator
from novacron.twin.topology import build_fleet

__all__ = [
    "DemoFleetParams",
    "predict_mttx",
    "simulate_mttx",
    "timed_out_probe_spacing",
]

_KINDS = (TwinFault.CRASH, TwinFault.HANG)


@dataclass(frozen=True, slots=True)
class DemoFleetParams:
    """Timing of the demo fleet's probes and actions (seconds)."""

    probe_interval_s: float = 0.1
    probe_timeout_s: float = 0.25  # a hung process fails a probe only after this
    failure_threshold: int = 2  # consecutive failed probes before a fault is declared
    success_threshold: int = 1  # good probes before a repair counts as verified
    exit_watch: bool = True  # crashes are seen as a process exit, not by probes
    exit_poll_s: float = 0.0  # 0: exits are delivered as events (pidfd, no polling)
    decision_s: float = 0.005  # ~15 store commits (~0.12 ms each) + logging, diagnosis, gate
    stop_s: float = 0.015  # SIGCONT + SIGTERM → exit of a hung (stopped) demo service
    start_s: float = 0.035  # exec → first ``200`` on /health of a demo service
    verify_interval_s: float = 0.02  # expedited probes after a start (EXPEDITED_INTERVAL_S)

    def __post_init__(self) -> None:
        for name in ("probe_interval_s", "probe_timeout_s", "verify_interval_s"):
            value = getattr(self, name)
            if not (value > 0 and math.isfinite(value)):
                raise InputError(f"must be finite and > 0, got {value!r}", where=f"DemoFleetParams.{name}")
        for name in ("exit_poll_s", "decision_s", "stop_s", "start_s"):
            value = getattr(self, name)
            if not (value >= 0 and math.isfinite(value)):
                raise InputError(f"must be finite and >= 0, got {value!r}", where=f"DemoFleetParams.{name}")
        for name in ("failure_threshold", "success_threshold"):
            if getattr(self, name) < 1:
                raise InputError("must be >= 1", where=f"DemoFleetParams.{name}")


def _kind(kind: TwinFault | str) -> TwinFault:
    fault = parse_fault(kind)
    if fault not in _KINDS:
        raise InputError(f"the demo fleet model covers crash and hang, not {fault.value}", where="kind")
    return fault


def timed_out_probe_spacing(params: DemoFleetParams) -> float:
    """Seconds between the starts of consecutive probes that each run to the timeout.

    The prober keeps a fixed grid and skips the ticks a slow probe overran, so the next
    probe starts at the first tick after the timed-out one ended.
    """
    interval, timeout = params.probe_interval_s, params.probe_timeout_s
    if timeout <= interval:
        return interval
    return (math.floor(timeout / interval + 1e-9) + 1) * interval


def _verify(p: DemoFleetParams) -> float:
    return p.verify_interval_s / 2.0 + (p.success_threshold - 1) * p.verify_interval_s


def predict_mttx(kind: TwinFault | str, params: DemoFleetParams | None = None) -> tuple[float, float]:
    """Mean (time to detect, time to repair) in seconds for ``kind`` on the demo fleet."""
    p = params or DemoFleetParams()
    fault = _kind(kind)
    phase = p.probe_interval_s / 2.0  # mean wait for the next scheduled probe
    if fault is TwinFault.CRASH:
        by_probe = phase + (p.failure_threshold - 1) * p.probe_interval_s
        mttd = p.exit_poll_s / 2.0 if p.exit_watch else by_probe
        stop = 0.0
    else:
        mttd = phase + (p.failure_threshold - 1) * timed_out_probe_spacing(p) + p.probe_timeout_s
        stop = p.stop_s
    return mttd, mttd + p.decision_s + stop + p.start_s + _verify(p)


def simulate_mttx(
    kind: TwinFault | str, params: DemoFleetParams | None = None, *, trials: int = 40, seed: int = 0
) -> tuple[float, float]:
    """Monte Carlo of the same scenario on the twin's simulator (mean TTD, mean TTR).

    The simulator probes on a fixed grid, so the fault lands at a random phase; for a hang
    the first failed probe is the simulator's, and the rest of detection (further probes
    at the timed-out spacing, the timeout) plus the decision time become the healer's
    detection delay; stop + start is its restart time, and verification on the expedited
    probes (not modelled by the simulator) is added as in the formula.
    """
    p = params or DemoFleetParams()
    fault = _kind(kind)
    if trials < 1:
        raise InputError(f"must be >= 1, got {trials}", where="trials")
    rng = np.random.default_rng(seed)
    hang = fault is TwinFault.HANG
    direct = fault is TwinFault.CRASH and p.exit_watch
    extra = (p.failure_threshold - 1) * timed_out_probe_spacing(p) + p.probe_timeout_s if hang else 0.0
    healer = HealerParams(
        probe_interval_s=p.exit_poll_s if direct and p.exit_poll_s > 0 else p.probe_interval_s,
        failure_threshold=1 if direct or hang else p.failure_threshold,
        detection_delay_s=p.decision_s + extra,
        restart_s=max(1e-3, p.start_s + (p.stop_s if hang else 0.0)),
    )
    dt = min(healer.probe_interval_s, 0.1) / 20.0
    ttd, ttr = [], []
    topo = build_fleet(1, 1, n_groups=1)
    for _ in range(trials):
        sim = with_healer(Simulator(topo, physics=PhysicsParams(dt_s=dt), healer=healer))
        at = float(rng.uniform(0.0, healer.probe_interval_s)) + 1.0
        sim.schedule_fault(at, 0, fault)
        sim.advance_to(at + 10.0 + healer.restart_s)
        rec = sim.records[0]
        if rec.t_detect is None or rec.t_recover is None:
            continue
        detect = rec.t_detect - rec.t_inject + extra
        if direct:
            detect = p.exit_poll_s / 2.0
        ttd.append(detect)
        repair_from_detect = rec.t_recover - rec.t_detect - extra
        ttr.append(detect + repair_from_detect + _verify(p))
    if not ttr:
        raise InputError("no trial recovered; check the parameters", where="params")
    return float(np.mean(ttd)), float(np.mean(ttr))
