"""``novacron bench twin-mirror``: how fast live changes reach the twin's mirror of a running controller."""

from __future__ import annotations

import asyncio
import math
import os
import signal
import tempfile
import uuid
from dataclasses import replace
from pathlib import Path

from novacron.clock import Clock
from novacron.model import FaultKind, Incident, IncidentId, IncidentStatus, Priority, TargetId
from novacron.runtime.controller import Controller
from novacron.runtime.mirror import TwinMirror
from novacron.settings import FleetSpec, TargetSpec
from novacron.store import Store
from novacron.telemetry import configure_logging

from ._stats import percentiles

__all__ = ["bench_mirror_latency"]


async def _wait_for(mirror: TwinMirror, target: str, what: str, after: int, limit_s: float = 5.0) -> float | None:
    """The mirror's ``seen_at`` of the first change matching ``what`` after index ``after``."""
    deadline = mirror.clock.monotonic() + limit_s
    while mirror.clock.monotonic() < deadline:
        for name, why, seen in mirror.changes[after:]:
            if name == target and why.startswith(what):
                return seen
        await asyncio.sleep(0.001)
    return None


async def _measure(rounds: int, workdir: Path) -> dict[str, list[float]]:
    spec = FleetSpec(
        name="mirror-bench",
        targets=[TargetSpec(name=f"svc{i}", command=["sleep", "600"]) for i in range(4)],
    )
    ctl = Controller(spec, store_url=f"sqlite:///{workdir / 'novacron.db'}", workdir=workdir)
    marks: dict[str, float] = {}
    exited = ctl.health.process_exited

    def stamped_exit(target: str, replica: int, code: int | None, *, expected: bool) -> None:
        marks[target] = ctl.clock.monotonic()  # the instant the controller's health changes
        exited(target, replica, code, expected=expected)

    ctl.health.process_exited = stamped_exit  # type: ignore[method-assign]
    await ctl.start()
    mirror = TwinMirror.for_spec(ctl, ctl.clock, spec)
    mirror.attach()
    other = Store.open(f"sqlite:///{workdir / 'novacron.db'}")  # a second writer, as another process
    out: dict[str, list[float]] = {"health_ms": [], "incident_ms": [], "store_ms": []}
    try:
        await asyncio.sleep(0.3)
        for i in range(rounds):
            target = f"svc{i % 4}"
            await ctl.wait_idle(10.0)
            after = len(mirror.changes)
            os.kill(ctl.actuator.pids(target)[0], signal.SIGKILL)
            seen_health = await _wait_for(mirror, target, "health:", after)
            seen_incident = await _wait_for(mirror, target, "incident:", after)
            if seen_health is not None and target in marks:
                out["health_ms"].append((seen_health - marks[target]) * 1000)
            if seen_incident is not None and target in marks:
                out["incident_ms"].append((seen_incident - marks[target]) * 1000)
            out["store_ms"].append(await _store_round(mirror, other, f"svc{(i + 1) % 4}", ctl.clock))
    finally:
        other.close()
        await mirror.close()
        await ctl.stop()
    return out


async def _store_round(mirror: TwinMirror, other: Store, target: str, clock: Clock) -> float:
    await asyncio.sleep(0.02 + 0.03 * (len(mirror.changes) % 7) / 7)  # vary the phase against the poll
    after = len(mirror.changes)
    incident = Incident(
        id=IncidentId(f"inc-ext-{uuid.uuid4().hex[:8]}"),
        target=TargetId(target),
        kind=FaultKind.ALERT,
        status=IncidentStatus.OPEN,
        priority=Priority.P3,
        opened_at=clock.now(),
        since=clock.now(),
        summary="raised by another writer",
    )
    other.insert_incident(incident)
    written = clock.monotonic()
    seen = await _wait_for(mirror, target, "store:incident", after)
    other.update_incident(replace(incident, status=IncidentStatus.RESOLVED, resolved_at=clock.now()))
    return float("nan") if seen is None else (seen - written) * 1000


def bench_mirror_latency(rounds: int = 12) -> dict[str, object]:
    """Propagation latency (ms) of live changes into the mirror, by channel.

    A real controller supervises four ``sleep`` processes; each round kills one (the
    controller's health changes and an incident opens) and, separately, a second store
    connection files an incident the controller never saw. Latency runs from the change
    (health state changed; row committed) to the mirror's record of it.
    """
    if rounds < 1:
        raise ValueError(f"rounds: must be >= 1, got {rounds}")
    with tempfile.TemporaryDirectory(prefix="novacron-mirror-") as tmp, (Path(tmp) / "log").open("w") as log:
        configure_logging(stream=log)
        samples = asyncio.run(_measure(rounds, Path(tmp)))
    result: dict[str, object] = {"rounds": rounds, "health_poll_ms": 10.0, "store_poll_ms": 50.0}
    for name, values in samples.items():
        clean = [v for v in values if not math.isnan(v)]  # NaN: the change was never seen
        result[name] = {**percentiles(clean, (50, 95, 99)), "max": round(max(clean), 2) if clean else None}
        result[f"{name.removesuffix('_ms')}_missed"] = len(values) - len(clean)
    return result
