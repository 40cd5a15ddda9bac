"""A twin of a real fleet spec: the same targets, checks, dependencies and policy, as sim targets.

:func:`measure_timings` reads how long repairs took from a controller's store: for every
resolved crash or hang incident healed by one restart, the time from the action's start
to verified healthy, less the verifying probe's answer (the twin's prober probes a
restarted VM at once and spends that answer time again). A crashed process only needs
starting; a hung one must be stopped first, so the difference of the two medians is the
twin's ``stop_s``. The same incidents give the controller's own decision time (incident
opened → action started), which simulated time does not spend by itself: the twin's
``decide_s``. :func:`twin_of` then turns each target into ``kind: sim`` with those
timings, keeping everything the controller decides on.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from dataclasses import dataclass, field

from novacron.errors import NotEnoughDataError
from novacron.model import ActionKind
from novacron.settings import FleetSpec, HeartbeatCheck, TargetSpec, TwinLatency, TwinSettings
from novacron.store import Store

__all__ = ["TwinTimings", "measure_timings", "twin_of"]

_MIN_SAMPLES = 3


@dataclass(frozen=True, slots=True)
class TwinTimings:
    """Repair timings measured from a store (seconds), and how many repairs each rests on."""

    restart_s: float
    stop_s: float
    replace_s: float
    samples: dict[str, int]
    probe_latency_s: float | None = None  # a healthy answer's time, where it was measured
    decide_s: float = 0.0  # incident opened → first action started
    latencies: dict[str, tuple[float, float]] = field(default_factory=dict)  # target → answer time (p50, p99)


def _restart_to_healthy(store: Store, answer: Mapping[str, float], default: float) -> dict[str, list[float]]:
    """Action start → verified healthy, less the verifying answer, per fault kind and action.

    For incidents healed by one restart/replace; ``answer`` is a target's healthy answer
    time (``default`` for targets not in it). The key ``decide`` holds incident opened →
    action started for the same incidents.
    """
    out: dict[str, list[float]] = {}
    for inc in store.incidents(limit=1_000_000):
        if inc.resolved_at is None or inc.preventive:
            continue
        actions = [a for a in store.actions(incident_id=inc.id) if a.started_at is not None]
        if len(actions) != 1 or actions[0].action.kind not in (ActionKind.RESTART, ActionKind.REPLACE):
            continue
        key = f"{inc.kind.value}/{actions[0].action.kind.value}"
        started = actions[0].started_at
        assert started is not None
        out.setdefault(key, []).append(max(0.0, inc.resolved_at - started - answer.get(inc.target, default)))
        out.setdefault("decide", []).append(max(0.0, started - inc.opened_at))
    return out


def measure_timings(
    *stores: Store,
    probe_latency_s: float | None = None,
    latencies: Mapping[str, tuple[float, float]] | None = None,
) -> TwinTimings:
    """The twin's repair timings from real fleets' incidents, pooled (NotEnoughDataError without crashes).

    The verifying probe's own answer time is part of every measured repair and is taken
    off, since the twin's probe spends it again: the target's median from ``latencies``
    (target → measured answer time ``(p50, p99)``), else ``probe_latency_s``.
    """
    lat = dict(latencies or {})
    answer = {target: p50 for target, (p50, _p99) in lat.items()}
    pieces: dict[str, list[float]] = {}
    for store in stores:
        for key, values in _restart_to_healthy(store, answer, probe_latency_s or 0.0).items():
            pieces.setdefault(key, []).extend(values)
    decide = pieces.pop("decide", [])
    crash = pieces.get("crash/restart", [])
    if len(crash) < _MIN_SAMPLES:
        raise NotEnoughDataError(
            f"need {_MIN_SAMPLES} crash incidents healed by one restart, found {len(crash)}", where="store"
        )
    restart_s = max(0.001, statistics.median(crash))
    hang = pieces.get("hang/restart", [])
    stop_s = max(0.0, statistics.median(hang) - restart_s) if len(hang) >= _MIN_SAMPLES else 0.0
    replaced = [d for k, durations in pieces.items() if k.endswith("/replace") for d in durations]
    replace_s = max(0.001, statistics.median(replaced)) if len(replaced) >= _MIN_SAMPLES else restart_s
    return TwinTimings(
        restart_s=round(restart_s, 4),
        stop_s=round(stop_s, 4),
        replace_s=round(replace_s, 4),
        samples={k: len(v) for k, v in sorted(pieces.items())},
        probe_latency_s=probe_latency_s,
        decide_s=round(statistics.median(decide), 4) if decide else 0.0,
        latencies=lat,
    )


def _sim_target(t: TargetSpec) -> TargetSpec:
    checks = [c for c in t.checks if not isinstance(c, HeartbeatCheck)]  # the twin's VMs send none
    return t.model_copy(
        update={
            "kind": "sim",
            "command": [],
            "env": {},
            "cwd": None,
            "replicas": min(t.replicas, 1),
            "max_replicas": max(1, min(t.max_replicas, 1)),
            "checks": checks,
            "metrics": None,
            "repair": None,
            "cleanup_paths": [],
        }
    )


def twin_of(spec: FleetSpec, timings: TwinTimings, *, store_url: str, seed: int = 0) -> FleetSpec:
    """``spec`` with every target on the twin, timed by ``timings``, its state in ``store_url``."""
    twin = TwinSettings(
        seed=seed,
        dt_s=0.01,
        restart_s=timings.restart_s,
        stop_s=timings.stop_s,
        replace_s=timings.replace_s,
        probe_latency_s=timings.probe_latency_s,
        decide_s=timings.decide_s,
        latency={
            name: TwinLatency(p50_s=p50, p99_s=max(p50, p99))
            for name, (p50, p99) in timings.latencies.items()
            if any(t.name == name for t in spec.targets)
        },
    )
    controller = spec.controller.model_copy(update={"store_url": store_url, "metrics_port": None, "api_port": None})
    return spec.model_copy(
        update={
            "name": f"{spec.name}-twin",
            "targets": [_sim_target(t) for t in spec.targets],
            "twin": twin,
            "controller": controller,
            "agents": spec.agents.model_copy(update={"enabled": False}),
        }
    )
