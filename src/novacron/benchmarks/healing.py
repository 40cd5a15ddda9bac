"""``novacron bench healing``: inject real faults into real services and time detect → heal.

MTTD runs from the injection to the fault's record (the incident's ``opened_at``), MTTR
from the injection to verified healthy (``resolved_at``). Faults are injected one at a
time, round-robin over the targets, each into a healthy target with no open incident.
The benchmark's policy relaxes the flap and rate rails (they would rightly quarantine a
service killed every few seconds) because it measures detection and repair, not them.

The demo fleet runs without its slow-burn faults (memory leak, filling disk): under load a
run lasts longer, and a disk that filled meanwhile would turn genuine repairs into
"false" actions. ``timeouts="fixed"`` turns the probes' adaptive timeouts off (every check waits its full
``timeout_s``, the earlier rule) so both rules can be measured on the same machine;
``load=N`` keeps N busy-loop processes running for the whole run (both cores busy), where
a false action on a slow-but-healthy service is most likely.

``dependency`` kills the deepest dependency of the fleet (the target the most others
depend on: the demo's database) while its dependents are checked on a path that calls
it, so they fail too. MTTD and MTTR are the root's; beside them the result counts the
incidents opened (``root_incidents`` should be 1, the rest ``linked_incidents``) and the
automated actions taken on dependents while the root healed (``actions_on_dependents``,
which root-cause handling keeps at 0).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from novacron.demo.fleet import demo_spec, free_port_block
from novacron.diagnosis.rootcause import dependents
from novacron.errors import InputError
from novacron.model import Incident, IncidentStatus
from novacron.runtime.controller import Controller
from novacron.settings import FleetSpec, Policy
from novacron.telemetry import configure_logging

from ._stats import percentiles

__all__ = ["KINDS", "run_healing_bench"]

KINDS = ("crash", "hang", "dependency")
TIMEOUT_RULES = ("adaptive", "fixed")
_SIGNALS = {"crash": signal.SIGKILL, "hang": signal.SIGSTOP, "dependency": signal.SIGKILL}
_PER_FAULT_TIMEOUT_S = 15.0


@dataclass
class _Tally:
    mttd: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in KINDS})
    mttr: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in KINDS})
    injected: int = 0
    detected: int = 0
    healed: int = 0
    matched: set[str] = field(default_factory=set)
    root_incidents: int = 0
    linked_incidents: int = 0
    actions_on_dependents: int = 0


def _bench_policy(policy: Policy) -> Policy:
    flap = policy.flap.model_copy(update={"threshold": 1_000_000})
    return policy.model_copy(update={"flap": flap, "max_actions_per_target_per_hour": 1_000_000})


def _with_timeouts(spec: FleetSpec, rule: str) -> FleetSpec:
    adaptive = rule == "adaptive"
    targets = []
    for t in spec.targets:
        checks = [
            c.model_copy(update={"adaptive_timeout": adaptive}) if hasattr(c, "adaptive_timeout") else c
            for c in t.checks
        ]
        targets.append(t.model_copy(update={"checks": checks}))
    return spec.model_copy(update={"targets": targets})


def _prepare(
    spec: FleetSpec | None, target: str | None, workdir: Path, timeouts: str, *, deep: bool = False
) -> tuple[FleetSpec, list[str]]:
    if spec is None:
        # The demo's slow-burn faults (cache's leak, reports' filling disk) are off: the
        # bench injects its own faults and counts every other action as false, so a disk
        # that filled because a loaded run took longer would be scored as a false action.
        spec = demo_spec(free_port_block(10), workdir, deep_checks=deep, leak_mb_per_s=0.0, fill_mb_per_s=0.0)
        names = [t.name for t in spec.targets]
    else:
        names = [t.name for t in spec.targets]
        if target is None or target not in names:
            raise InputError(f"name one of the spec's targets ({', '.join(names)})", where="--target")
        names = [target]
    spec = spec.model_copy(update={"policy": _bench_policy(spec.policy)})
    return _with_timeouts(spec, timeouts), names


@contextlib.contextmanager
def _busy_loops(count: int) -> Iterator[None]:
    """``count`` processes spinning on a core each, ended (by pid) afterwards."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        yield
    finally:
        for proc in procs:
            proc.kill()
        for proc in procs:
            proc.wait()


async def _wait_ready(controller: Controller, target: str, timeout: float) -> bool:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while loop.time() < end:
        if controller.health.is_healthy(target) and controller.incidents.open_for(target) is None:
            return True
        await asyncio.sleep(0.02)
    return False


async def _inject_one(controller: Controller, target: str, kind: str, tally: _Tally) -> None:
    pids = controller.actuator.pids(target)
    if not pids:
        return
    injected_at = controller.clock.now()
    os.kill(pids[0], _SIGNALS[kind])
    tally.injected += 1
    incident = await _await_incident(controller, target, injected_at)
    if incident is None:
        return
    tally.detected += 1
    tally.matched.add(incident.id)
    tally.mttd[kind].append(incident.opened_at - injected_at)
    resolved = await _await_resolution(controller, incident)
    if resolved is not None and resolved.resolved_at is not None:
        tally.healed += 1
        tally.mttr[kind].append(resolved.resolved_at - injected_at)


def deepest_dependency(spec: FleetSpec) -> str:
    """The target the most others depend on (transitively); ties go to the first in the spec."""
    graph = {t.name: t.depends_on for t in spec.targets}
    return max(graph, key=lambda name: len(dependents(name, graph)))


async def _inject_dependency(controller: Controller, root: str, tally: _Tally) -> None:
    """Kill ``root`` under its dependents; time the root's repair and count what touched the dependents."""
    graph = {t.name: t.depends_on for t in controller.spec.targets}
    downstream = dependents(root, graph)
    since = controller.clock.now()
    await _inject_one(controller, root, "dependency", tally)
    for name in sorted(downstream):  # dependents settle (re-verified, resolved) before the next fault
        await _wait_ready(controller, name, _PER_FAULT_TIMEOUT_S)
    for inc in controller.store.incidents(limit=10_000):
        if inc.opened_at < since or inc.preventive:
            continue
        kinds = {e.kind: e for e in controller.store.timeline(inc.id)}
        if "linked" in kinds and inc.target != root:
            tally.linked_incidents += 1
            tally.matched.add(inc.id)
        elif inc.target == root:
            tally.root_incidents += 1
    tally.actions_on_dependents += sum(
        1
        for rec in controller.store.actions(limit=1_000_000)
        if rec.action.target in downstream and rec.created_at >= since and rec.action.requested_by == "controller"
    )


async def _await_incident(controller: Controller, target: str, since: float) -> Incident | None:
    loop = asyncio.get_running_loop()
    end = loop.time() + _PER_FAULT_TIMEOUT_S
    while loop.time() < end:
        inc = controller.incidents.open_for(target)
        if inc is not None and inc.opened_at >= since:
            return inc
        await asyncio.sleep(0.005)
    return None


async def _await_resolution(controller: Controller, incident: Incident) -> Incident | None:
    """The incident once resolved; None when it went to a human or the wait ran out.

    Watched in the controller's memory, where it stays until resolved; the store is read
    once at the end, on a worker thread: the bench shares the controller's loop, and a
    read there would wait for the controller's queued writes and stall its probes.
    """
    loop = asyncio.get_running_loop()
    end = loop.time() + _PER_FAULT_TIMEOUT_S
    while loop.time() < end:
        current = controller.incidents.open_for(incident.target)
        if current is None or current.id != incident.id:
            done = await asyncio.to_thread(controller.store.incident, incident.id)
            return done if done.status is IncidentStatus.RESOLVED else None
        if current.status is IncidentStatus.NEEDS_HUMAN:
            return None
        await asyncio.sleep(0.01)
    return None


def _unmatched_actions(controller: Controller, matched: set[str]) -> tuple[int, int]:
    """Automated actions no injection explains: (false, preventive).

    An action for a *preventive* incident answers a forecast (the demo's leaking and
    filling services), not a healthy target touched by mistake, so it is counted apart.
    """
    preventive = {i.id for i in controller.store.incidents(limit=1_000_000) if i.preventive}
    false_actions = prevented = 0
    for rec in controller.store.actions(limit=1_000_000):
        if rec.action.incident_id in matched or rec.action.requested_by != "controller":
            continue
        if rec.action.incident_id in preventive:
            prevented += 1
        else:
            false_actions += 1
    return false_actions, prevented


async def _bench(spec: FleetSpec, names: list[str], faults: int, kinds: list[str], workdir: Path) -> dict[str, Any]:
    controller = Controller(spec, workdir=workdir, store_url=f"sqlite:///{workdir / 'bench.db'}", seed=7)
    tally = _Tally()
    root = deepest_dependency(spec)
    await controller.start()
    try:
        for i in range(faults):
            target, kind = names[i % len(names)], kinds[(i // len(names)) % len(kinds)]
            target = root if kind == "dependency" else target
            if not await _wait_ready(controller, target, _PER_FAULT_TIMEOUT_S):
                continue
            await asyncio.sleep(0.3)  # let the probes settle into their normal rhythm
            if kind == "dependency":
                await _inject_dependency(controller, target, tally)
            else:
                await _inject_one(controller, target, kind, tally)
        await controller.wait_idle(5.0)
        false_actions, preventive_actions = _unmatched_actions(controller, tally.matched)
        timeouts = sorted(controller.prober.timeouts().values())
    finally:
        await controller.stop()
    return {
        "injected": tally.injected,
        "detected": tally.detected,
        "healed": tally.healed,
        "false_actions": false_actions,
        "preventive_actions": preventive_actions,
        "mttd_ms": {k: percentiles(tally.mttd[k], scale=1000) for k in kinds},
        "mttr_ms": {k: percentiles(tally.mttr[k], scale=1000) for k in kinds},
        # The probe timeouts in force at the end (learned ones when adaptive).
        "probe_timeout_ms": {
            "min": round(1000 * timeouts[0], 1) if timeouts else None,
            "max": round(1000 * timeouts[-1], 1) if timeouts else None,
        },
        "targets": names,
        **(
            {
                "dependency_root": root,
                "root_incidents": tally.root_incidents,
                "linked_incidents": tally.linked_incidents,
                "actions_on_dependents": tally.actions_on_dependents,
            }
            if "dependency" in kinds
            else {}
        ),
    }


def run_healing_bench(
    *,
    faults: int,
    kinds: list[str],
    spec: FleetSpec | None = None,
    target: str | None = None,
    load: int = 0,
    timeouts: str = "adaptive",
) -> dict[str, Any]:
    """Run the benchmark and return its JSON-ready result."""
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        raise InputError(f"unknown fault kind(s) {unknown}; choose from {', '.join(KINDS)}", where="--kinds")
    if faults < 1:
        raise InputError("must be at least 1", where="--faults")
    if not 0 <= load <= 64:
        raise InputError(f"must be between 0 and 64 busy loops, got {load}", where="--load")
    if timeouts not in TIMEOUT_RULES:
        raise InputError(f"must be one of {', '.join(TIMEOUT_RULES)}, got {timeouts!r}", where="--timeouts")
    workdir = Path(tempfile.mkdtemp(prefix="novacron-bench-"))
    with (workdir / "controller.log").open("w") as log, _busy_loops(load):
        configure_logging(stream=log)
        full_spec, names = _prepare(spec, target, workdir, timeouts, deep="dependency" in kinds)
        result = asyncio.run(_bench(full_spec, names, faults, kinds, workdir))
        result["load_average_1m"] = round(os.getloadavg()[0], 2)
    result.update({"load": load, "timeouts": timeouts, "workdir": str(workdir)})
    return result
