"""``novacron demo``: real services, the controller on SQLite, a chaos monkey, a live table.

Everything started here is stopped on the way out (end of ``--duration``, Ctrl-C or
SIGTERM): the chaos monkey restores what it broke, then the controller stops every
replica.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import statistics
import tempfile
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from novacron.actuators.qemu_guest import build_guest
from novacron.demo.chaos import ChaosKind, ChaosMonkey, Injection, chaos_targets
from novacron.demo.fleet import METRIC_WARMUP_S, demo_spec, free_port_block
from novacron.demo.guests import GUEST_HOSTS, add_guests, guests_unavailable
from novacron.model import Health, Incident, IncidentStatus, TimelineEvent
from novacron.runtime.controller import Controller
from novacron.store import Store
from novacron.telemetry import configure_logging

__all__ = ["DEMO_KINDS", "DemoResult", "run_demo"]

DEMO_KINDS = (ChaosKind.CRASH, ChaosKind.HANG, ChaosKind.SLOW, ChaosKind.ERRORS, ChaosKind.BREAK_START)
# Faults only the metric detectors can see, injected once their baselines are learned.
METRIC_KINDS = (ChaosKind.CREEP, ChaosKind.SPIN)
_COLOURS = {Health.HEALTHY: "green", Health.STARTING: "yellow", Health.UNHEALTHY: "red", Health.STOPPED: "red"}


@dataclass
class DemoResult:
    """What the demo saw."""

    workdir: Path
    injections: list[Injection] = field(default_factory=list)
    incidents: list[Incident] = field(default_factory=list)
    actions: Counter[str] = field(default_factory=Counter)
    last_event: dict[str, str] = field(default_factory=dict)
    guests: dict[str, str] = field(default_factory=dict)  # vm target → its state at the end

    def summary(self) -> Table:
        """The closing summary table."""
        resolved = [i for i in self.incidents if i.status is IncidentStatus.RESOLVED]
        human = [i for i in self.incidents if i.status is IncidentStatus.NEEDS_HUMAN]
        table = Table(title="demo summary", show_header=False)
        table.add_row("faults injected", str(len(self.injections)))
        table.add_row("by kind", ", ".join(f"{k}={n}" for k, n in Counter(i.kind for i in self.injections).items()))
        table.add_row("incidents", str(len(self.incidents)))
        table.add_row("healed (verified)", str(len(resolved)))
        table.add_row("escalated to a human", str(len(human)))
        table.add_row("MTTD p50 / p95", _pct([i.mttd_s for i in self.incidents]))
        table.add_row("MTTR p50 / p95", _pct([i.mttr_s for i in resolved if i.mttr_s is not None]))
        table.add_row("actions", ", ".join(f"{k}={n}" for k, n in sorted(self.actions.items())) or "-")
        if self.guests:
            table.add_row("guests", ", ".join(f"{name}={state}" for name, state in sorted(self.guests.items())))
        table.add_row("store", str(self.workdir / "novacron.db"))
        return table


def _pct(values: list[float]) -> str:
    if not values:
        return "-"
    ms = sorted(v * 1000 for v in values)
    p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
    return f"{statistics.median(ms):.0f} ms / {p95:.0f} ms"


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _live_table(controller: Controller, result: DemoResult) -> Group:
    table = Table(title="NovaCron demo — live")
    for col in ("service", "state", "pid", "incidents", "open", "last event"):
        table.add_column(col)
    per_target = Counter(str(i.target) for i in result.incidents)
    for view in controller.status():
        colour = _COLOURS.get(view.health, "white")
        pids = controller.actuator.pids(view.target)
        table.add_row(
            view.target,
            f"[{colour}]{view.health}[/]",
            str(pids[0]) if pids else "-",
            str(per_target[view.target]),
            f"{view.incident.status} P{int(view.incident.priority)}" if view.incident else "-",
            result.last_event.get(view.target, ""),
        )
    resolved = [i.mttr_s for i in result.incidents if i.mttr_s is not None]
    line = Text(
        f"injected {len(result.injections)} · incidents {len(result.incidents)} · "
        f"MTTD p50 {_pct([i.mttd_s for i in result.incidents])} · MTTR p50 {_pct(resolved)}"
    )
    return Group(table, line)


async def run_demo(
    *, duration_s: float, seed: int, console: Console, rate_per_s: float = 0.35, vms: bool = False
) -> DemoResult:
    """Run the demo for ``duration_s`` seconds (or until SIGINT/SIGTERM) and return what happened.

    With ``vms`` two QEMU guests join the fleet when this machine can run them (else a
    line says why and the demo runs without them).
    """
    workdir = Path(tempfile.mkdtemp(prefix="novacron-demo-"))
    with (workdir / "controller.log").open("w") as log:
        configure_logging(stream=log)
        spec = demo_spec(free_port_block(10), workdir, heartbeat_udp_port=_free_udp_port())
        if vms:
            why = guests_unavailable()
            if why is None:
                spec = add_guests(spec, build_guest(), free_port_block(len(GUEST_HOSTS)))
            else:
                console.print(f"--vms: the demo runs without guests: {why}")
        controller = Controller(spec, workdir=workdir, seed=seed, spec_source="novacron.demo")
        result = DemoResult(workdir)
        ids: dict[str, int] = {}

        def on_change(incident: Incident, event: TimelineEvent) -> None:
            if incident.id not in ids:
                ids[incident.id] = len(result.incidents)
                result.incidents.append(incident)
            else:
                result.incidents[ids[incident.id]] = incident
            if event.kind in {"verified", "action_failed", "verification_failed", "blocked", "rolled_back"}:
                result.actions[f"{event.detail.split(':', 1)[0]} {event.kind}"] += 1
            result.last_event[incident.target] = f"{event.kind}: {event.detail}"[:70]

        controller.listeners.append(on_change)
        await _run(controller, result, duration_s=duration_s, seed=seed, rate=rate_per_s, console=console)
        result.incidents = _final(workdir)
        return result


def _final(workdir: Path) -> list[Incident]:
    """Every incident of the run, oldest first, as stored."""
    store = Store.open(f"sqlite:///{workdir / 'novacron.db'}")
    try:
        return list(reversed(store.incidents(limit=100_000)))
    finally:
        store.close()


async def _after(delay_s: float, work: Coroutine[Any, Any, None]) -> None:
    try:
        await asyncio.sleep(delay_s)
    except asyncio.CancelledError:
        work.close()
        raise
    await work


async def _run(
    controller: Controller, result: DemoResult, *, duration_s: float, seed: int, rate: float, console: Console
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await controller.start()
    services = controller.spec.model_copy(update={"targets": [t for t in controller.spec.targets if t.kind != "vm"]})
    monkey = ChaosMonkey(
        chaos_targets(services), controller.actuator.pids, seed=seed, on_injection=result.injections.append
    )

    def healthy() -> list[str]:
        return [v.target for v in controller.status() if v.health is Health.HEALTHY and v.incident is None]

    chaos = loop.create_task(monkey.run(healthy, controller.clock, rate, DEMO_KINDS))
    metric_chaos = loop.create_task(
        _after(METRIC_WARMUP_S + 5, monkey.run(healthy, controller.clock, rate / 3, METRIC_KINDS))
    )
    try:
        with Live(_live_table(controller, result), console=console, refresh_per_second=4) as live:
            end = loop.time() + duration_s
            while not stop.is_set() and loop.time() < end:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.25):
                        await stop.wait()
                live.update(_live_table(controller, result))
                result.guests = {
                    v.target: v.state or v.health.value
                    for v in controller.status()
                    if controller.spec.target(v.target).kind == "vm"
                }
        if not console.is_terminal:
            # Live ends its last frame mid-line off a terminal (on one it moves to a new line itself)
            console.line()
    finally:
        for task in (chaos, metric_chaos):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await monkey.aclose()
        await controller.stop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
