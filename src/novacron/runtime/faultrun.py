"""Inject faults one at a time into a running controller's fleet and time detect → heal.

One driver for both worlds: the real demo fleet (signals to real processes) and its twin
(faults injected into the simulator), so a twin's prediction and a real run are measured
by the same code. Times come from the controller's clock (simulated on the twin).

Kinds: ``crash`` and ``hang`` strike the measured target itself; ``dependency`` hangs
the target's upstream and measures the target, whose health check waits on the upstream
and fails with it (MTTR: the upstream's hang → the target verified healthy again).
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from novacron.model import IncidentStatus
from novacron.runtime.controller import Controller

__all__ = ["FAULT_KINDS", "FaultPlan", "FaultResult", "FaultTimes", "process_injector", "run_plan", "twin_injector"]

FAULT_KINDS = ("crash", "hang", "dependency")
_SIGNALS = {"crash": signal.SIGKILL, "hang": signal.SIGSTOP}
Injector = Callable[[str, str], bool]  # (target, crash|hang) → injected
_SETTLE_TRIES = 5  # relapses waited out before a fault is skipped as striking a restless fleet
_RECENT = 20  # newest incidents looked at for a relapse (a few open between two faults)


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """What to strike: kind, the measured target, the target struck (its upstream for a dependency), how."""

    kind: str
    target: str
    struck: str
    how: str = ""  # what is injected into ``struck`` (default: crash for a crash, else hang)

    @property
    def injected(self) -> str:
        """The fault injected into ``struck``."""
        return self.how or ("crash" if self.kind == "crash" else "hang")


@dataclass(frozen=True, slots=True)
class FaultResult:
    """How one injected fault went on its measured target."""

    plan: FaultPlan
    mttd_s: float | None
    mttr_s: float | None  # None: not healed by the controller within the timeout
    incident_id: str | None
    # The fleet raised an incident of its own in the settle after this fault was measured:
    # a repair that did not hold (or left the fleet worse), whatever it reported.
    relapsed: bool = False

    @property
    def held(self) -> bool:
        """Healed, and the fleet stayed quiet through the settle that followed."""
        return self.mttr_s is not None and not self.relapsed


@dataclass
class FaultTimes:
    """MTTD and MTTR (seconds) per kind, and the counts."""

    mttd: dict[str, list[float]] = field(default_factory=dict)
    mttr: dict[str, list[float]] = field(default_factory=dict)
    injected: int = 0
    healed: int = 0
    relapses: int = 0  # incidents the fleet raised with no fault injected (waited out, never struck over)
    results: list[FaultResult] = field(default_factory=list)

    def relapse(self) -> None:
        """Count an incident raised between faults against the last fault measured."""
        self.relapses += 1
        if self.results and not self.results[-1].relapsed:
            self.results[-1] = replace(self.results[-1], relapsed=True)


def process_injector(controller: Controller) -> Injector:
    """Signals to real processes: SIGKILL (crash) or SIGSTOP (hang)."""

    def inject(target: str, how: str) -> bool:
        pids = controller.actuator.pids(target)
        if not pids:
            return False
        os.kill(pids[0], _SIGNALS[how])
        return True

    return inject


def twin_injector(controller: Controller) -> Injector:
    """Faults injected into the controller's twin."""
    twin = controller.twin
    assert twin is not None, "a twin injector needs sim targets"

    def inject(target: str, how: str) -> bool:
        twin.inject(target, how)
        return True

    return inject


def _is_quiet(controller: Controller) -> bool:
    """Every target healthy, no incident open, no healer running."""
    return (
        all(controller.health.is_healthy(t.name) for t in controller.spec.targets)
        and not controller.incidents.open_incidents()
        and not controller.flow.healing
    )


async def _quiet(controller: Controller, timeout: float, poll_s: float) -> bool:
    """Wait until the fleet is quiet (:func:`_is_quiet`); False when it is not within ``timeout``."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while loop.time() < end:
        if _is_quiet(controller):
            return True
        await asyncio.sleep(poll_s)
    return False


async def _settled(
    controller: Controller, settle_s: float, timeout: float, poll_s: float, times: FaultTimes, since: float | None
) -> bool:
    """Quiet, and no incident opened since ``since`` (the last fault measured) through a settle.

    An incident the fleet raises after a fault was measured and before the next one is a
    relapse of that repair: counted against it and waited out, then the settle starts
    again, so a fault never strikes a target that is already failing.
    """
    for _ in range(_SETTLE_TRIES):
        if not await _quiet(controller, timeout, poll_s):
            return False
        await asyncio.sleep(settle_s)
        if _is_quiet(controller) and (since is None or not _opened_since(controller, since)):
            return True
        times.relapse()
        since = controller.clock.now()
    return False


def _opened_since(controller: Controller, since: float) -> bool:
    """Whether any incident was opened at or after ``since`` (resolved ones included)."""
    return any(i.opened_at >= since for i in controller.store.incidents(limit=_RECENT))


async def _measure(controller: Controller, plan: FaultPlan, since: float, timeout: float, poll_s: float) -> FaultResult:
    """MTTD and MTTR of ``plan.target`` after an injection at ``since`` (None where it never came)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    opened: float | None = None
    incident_id: str | None = None
    while loop.time() < end:
        inc = controller.incidents.open_for(plan.target)
        if inc is not None and inc.opened_at >= since and opened is None:
            opened, incident_id = inc.opened_at, inc.id
        if incident_id is not None and inc is None:
            done = controller.store.incident(incident_id)
            healed = done.status is IncidentStatus.RESOLVED and done.resolved_at is not None
            mttr = done.resolved_at - since if healed and done.resolved_at is not None else None
            return FaultResult(plan, None if opened is None else opened - since, mttr, incident_id)
        await asyncio.sleep(poll_s)
    return FaultResult(plan, None if opened is None else opened - since, None, incident_id)


async def run_plan(
    controller: Controller,
    inject: Injector,
    plans: Sequence[FaultPlan],
    *,
    settle_s: float = 0.3,
    timeout_s: float = 15.0,
    after: Callable[[FaultPlan], None] | None = None,
    poll_s: float = 0.005,
    jitter_s: float = 0.0,
    seed: int = 0,
) -> FaultTimes:
    """Inject every plan into a quiet fleet, one at a time, and time each.

    Each fault waits ``settle_s`` plus a random part of ``jitter_s`` (seeded) after the
    fleet is quiet, so faults meet the probes at every point of their cycle.

    ``after`` runs once a fault is measured (healed or not): e.g. a human's repair of
    whatever the controller could not heal, so the next fault meets a quiet fleet.
    Times come from the incidents' own records; ``poll_s`` is only how often they are
    looked at (on the twin every look also steps the simulation, so it sets the cost).
    """
    times = FaultTimes()
    rng = random.Random(seed)
    measured: float | None = None  # when the last fault's measurement ended
    for plan in plans:
        # The settle puts the probes back in their normal rhythm before the next fault.
        if not await _settled(controller, settle_s + rng.uniform(0.0, jitter_s), timeout_s, poll_s, times, measured):
            continue
        since = controller.clock.now()
        if not inject(plan.struck, plan.injected):
            continue
        times.injected += 1
        result = await _measure(controller, plan, since, timeout_s, poll_s)
        measured = controller.clock.now()
        times.results.append(result)
        if after is not None:
            after(plan)
        if result.mttr_s is None or result.mttd_s is None:
            continue
        times.healed += 1
        times.mttd.setdefault(plan.kind, []).append(result.mttd_s)
        times.mttr.setdefault(plan.kind, []).append(result.mttr_s)
    return times
