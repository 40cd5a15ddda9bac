"""``novacron twin …`` (run, forecast, what-if) and ``novacron bench twin``.

This module is the twin's edge: it parses durations, reads trace CSVs from disk and hands
plain arrays to the pure :mod:`novacron.twin` library.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from novacron.cli._app import app, bench_app
from novacron.cli._numbers import check_number
from novacron.cli._twin_output import print_summary
from novacron.errors import InputError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt


__all__ = ["load_trace", "parse_duration"]

twin_app = typer.Typer(help="Digital twin: simulate a fleet, ask what-if, look ahead.", no_args_is_help=True)
app.add_typer(twin_app, name="twin")

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")


def parse_duration(text: str, *, where: str = "duration") -> float:
    """``"24h"``, ``"90m"``, ``"3600"`` or ``"1.5d"`` → seconds (> 0)."""
    match = _DURATION.match(text)
    if not match:
        raise InputError(f"expected a number with an optional unit s/m/h/d, got {text!r}", where=where)
    seconds = float(match.group(1)) * _UNITS[match.group(2) or "s"]
    if seconds <= 0:
        raise InputError(f"must be > 0, got {text!r}", where=where)
    return seconds


def load_trace(path: Path, column: str | None) -> tuple[npt.NDArray[np.float64], str]:
    """Read one numeric column of a trace CSV (default: the first usage column)."""
    import numpy as np

    if not path.is_file():
        raise InputError("no such file", where=str(path))
    with path.open(encoding="utf-8") as fh:
        header = [h.strip() for h in fh.readline().split(",")]
    usable = [h for h in header if h != "timestamp"]
    name = column or (usable[0] if usable else "")
    if name not in header:
        raise InputError(f"no column {name!r} (columns: {', '.join(header)})", where=str(path))
    try:
        values = np.loadtxt(path, delimiter=",", skiprows=1, usecols=header.index(name), ndmin=1)
    except ValueError as exc:
        raise InputError(f"column {name!r} is not numeric: {exc}", where=str(path)) from exc
    return values.astype(np.float64), name


HostsOpt = Annotated[int, typer.Option("--hosts", help="Number of hosts.")]
VmsOpt = Annotated[int, typer.Option("--vms", help="Number of VMs.")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Random seed (placement, faults, bursts).")]
TraceOpt = Annotated[Path | None, typer.Option("--trace", help="Trace CSV (5-minute rows) for the workload shape.")]
ColumnOpt = Annotated[str | None, typer.Option("--column", help="Trace column (default: first).")]


def _check_sizes(hosts: int, vms: int) -> None:
    if hosts < 1:
        raise InputError(f"must be >= 1, got {hosts}", where="--hosts")
    if vms < 0:
        raise InputError(f"must be >= 0, got {vms}", where="--vms")


def _workload(trace: Path | None, column: str | None, groups: int) -> Any:
    from novacron.twin import SyntheticWorkload, TraceWorkload

    if trace is None:
        return SyntheticWorkload(n_groups=groups)
    values, name = load_trace(trace, column)
    return TraceWorkload.from_array(values, n_groups=groups, name=f"{trace}:{name}")


@twin_app.command("run")
def run(
    hosts: HostsOpt = 1000,
    vms: VmsOpt = 10_000,
    fault_rate: Annotated[float, typer.Option("--fault-rate", help="Faults per hour, fleet-wide.")] = 60.0,
    duration: Annotated[str, typer.Option("--duration", help="Simulated time, e.g. 24h, 90m.")] = "24h",
    seed: SeedOpt = 0,
    trace: TraceOpt = None,
    column: ColumnOpt = None,
    probe_interval: Annotated[float, typer.Option("--probe-interval", help="Seconds.")] = 5.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    controller: Annotated[
        bool,
        typer.Option(
            "--controller",
            help="Heal with the real controller flow (probes, incidents, ladder, safety gate, store) "
            "through sim:// sensors and actuators instead of the built-in healer; slower, size it down.",
        ),
    ] = False,
    what_if: Annotated[
        bool,
        typer.Option("--what-if", help="With --controller: the twin ranks/vetoes each ladder step first."),
    ] = False,
) -> None:
    """Run a fleet with random faults and the built-in healer as fast as possible."""
    import time

    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from novacron.twin import HealerParams, Simulator, build_fleet, burst_arrivals, with_healer

    _check_sizes(hosts, vms)
    check_number(fault_rate, "--fault-rate", positive=False)
    check_number(probe_interval, "--probe-interval", positive=True)
    horizon = parse_duration(duration, where="--duration")
    if controller:
        if trace is not None:
            raise InputError("--trace is not supported with --controller", where="--trace")
        from novacron.cli._twin_controller import run_with_controller

        run_with_controller(hosts, vms, fault_rate, horizon, seed, probe_interval, as_json=as_json, what_if=what_if)
        return
    if what_if:
        raise InputError("--what-if needs --controller", where="--what-if")
    topo = build_fleet(hosts, vms, seed=seed)
    sim = with_healer(
        Simulator(
            topo, healer=HealerParams(probe_interval_s=probe_interval), workload=_workload(trace, column, 8), seed=seed
        )
    )
    sim.schedule_random_faults(fault_rate, horizon)
    sim.schedule_bursts(burst_arrivals(sim.rng, topo.n_vms, horizon, per_hour=2 * fault_rate))
    chunk = max(sim.params.dt_s, min(600.0, horizon / 100))
    start = time.perf_counter()
    columns = (TextColumn("[bold]twin"), BarColumn(), TextColumn("{task.fields[sim]}"), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), disable=as_json) as bar:
        task = bar.add_task("run", total=horizon, sim="")
        while sim.now < horizon - 1e-9:
            sim.advance_to(min(horizon, sim.now + chunk))
            bar.update(task, completed=sim.now, sim=f"{sim.now / 3600:.1f} h, {len(sim.records)} faults")
    wall = time.perf_counter() - start
    summary = sim.summary()
    if as_json:
        print(json.dumps({**summary.as_dict(), "wall_s": wall, "speedup_vs_realtime": horizon / wall}))
        return
    print_summary(summary, wall)


@bench_app.command("twin")
def bench_twin(
    hosts: HostsOpt = 1000,
    vms: VmsOpt = 10_000,
    horizon: Annotated[str, typer.Option("--horizon", help="Simulated time of the full run.")] = "1h",
    simpy_horizon: Annotated[str, typer.Option("--simpy-horizon", help="SimPy comparison horizon.")] = "60s",
    fault_rate: Annotated[float, typer.Option("--fault-rate", help="Faults per hour.")] = 100.0,
    seed: SeedOpt = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (always JSON).")] = True,
) -> None:
    """Twin speed: vs real time (with faults and healing), steps/s, vs a SimPy model; peak RSS."""
    from novacron.benchmarks.twin import run_twin_bench

    _check_sizes(hosts, vms)
    result = run_twin_bench(
        hosts,
        vms,
        horizon_s=parse_duration(horizon, where="--horizon"),
        simpy_horizon_s=parse_duration(simpy_horizon, where="--simpy-horizon"),
        fault_rate_per_hour=fault_rate,
        seed=seed,
    )
    print(json.dumps(result, indent=None if as_json else 2))


def _parse_injection(text: str, *, flag: str, n_vms: int, action: bool = False) -> tuple[str, int]:
    """``KIND:VM`` of a fault (or, with ``action``, of a planned action), refused under ``flag``."""
    from novacron.twin.faults import parse_action, parse_fault

    kind, sep, vm = text.partition(":")
    example = "migrate:12" if action else "disk_fill:12"
    if not sep or not vm.strip().isdigit():
        raise InputError(f"expected KIND:VM (e.g. {example}), got {text!r}", where=flag)
    try:
        (parse_action if action else parse_fault)(kind.strip())
    except InputError as exc:
        raise InputError(exc.reason, where=flag) from None
    if int(vm) >= n_vms:
        raise InputError(f"{text!r}: {int(vm)} is not a VM (0..{n_vms - 1})", where=flag)
    return kind.strip(), int(vm)


# The twin steps a simulated fleet hour by hour (about 30 ms each at the default size):
# 30 days is half a minute, and longer horizons are capacity planning's job.
_MAX_FORECAST_H = 720.0


@twin_app.command("forecast")
def forecast_cmd(
    hours: Annotated[float, typer.Option("--hours", help=f"Hours to look ahead (at most {_MAX_FORECAST_H:g}).")] = 24.0,
    hosts: HostsOpt = 1000,
    vms: VmsOpt = 10_000,
    seed: SeedOpt = 0,
    trace: TraceOpt = None,
    column: ColumnOpt = None,
    at: Annotated[str | None, typer.Option("--at", help="'Now' within the trace (default: its end), e.g. 7d.")] = None,
    inject: Annotated[
        list[str] | None, typer.Option("--inject", help="Fault present now, KIND:VM (repeatable).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print rows as JSON.")] = False,
) -> None:
    """Project fleet state hour by hour from now under a seasonal-naive workload forecast."""
    import dataclasses

    from rich.console import Console
    from rich.table import Table

    from novacron.twin import HealerParams, Simulator, TraceWorkload, build_fleet
    from novacron.twin.forecast import forecast

    if not (0 < hours <= _MAX_FORECAST_H):
        raise InputError(
            f"must be > 0 and at most {_MAX_FORECAST_H:g} (30 days; `novacron forecast capacity` plans further), "
            f"got {hours}",
            where="--hours",
        )
    _check_sizes(hosts, vms)
    injections = [_parse_injection(x, flag="--inject", n_vms=vms) for x in inject or []]
    workload = _workload(trace, column, 8)
    is_trace = isinstance(workload, TraceWorkload)
    default_now = workload.span_s if is_trace else 0.0
    now = parse_duration(at, where="--at") if at is not None else default_now
    if is_trace and now > workload.span_s:  # the trace would wrap round: "now" would be a day it never saw
        raise InputError(f"{at!r} is past the end of the trace ({workload.span_s / 86_400:.3g} d)", where="--at")
    topo = build_fleet(hosts, vms, seed=seed)
    sim = Simulator(topo, workload=workload, healer=HealerParams(enabled=False), seed=seed, t0=now - 3600.0)
    sim.fork(dt_s=60.0)  # validates the step before the warm-up
    sim.advance_to(now)  # an hour of history so temperatures and queues settle
    for kind, vm in injections:
        sim.inject_fault(vm, kind)
    ahead = workload.seasonal_naive(now) if is_trace else workload
    rows = forecast(sim, hours, workload=ahead)
    if as_json:
        print(json.dumps([dataclasses.asdict(r) for r in rows]))
        return
    table = Table(title=f"Fleet forecast: {hosts} hosts, {vms} VMs, next {hours:g} h")
    heads = ("hour", "cpu", "peak", ">80%", "sat", "hot", "°C", "p95 ms", "disk", "mem", "avail")
    for head in heads:
        table.add_column(head, justify="right")
    for r in rows:
        table.add_row(
            str(r.hour),
            f"{r.mean_util:.0%}",
            f"{r.peak_util:.0%}",
            str(r.hosts_over_80),
            str(r.hosts_saturated),
            str(r.hosts_throttled),
            f"{r.peak_temp_c:.0f}",
            f"{r.p95_latency_ms:.0f}",
            f"{r.peak_disk_fill:.0%}",
            f"{r.peak_mem_fill:.0%}",
            f"{r.availability:.2%}",
        )
    Console().print(table)
    Console().print(
        "cpu/peak: mean and busiest host CPU; >80%, sat(urated), hot (throttled): host counts; "
        "disk/mem: fullest host; avail: VMs passing probes"
    )


@twin_app.command("what-if")
def what_if_cmd(
    plan: Annotated[
        list[str] | None,
        typer.Option("--plan", help="Candidate plan, comma-separated KIND:VM (repeatable)."),
    ] = None,
    fault: Annotated[list[str] | None, typer.Option("--fault", help="Fault present now, KIND:VM.")] = None,
    horizon: Annotated[str, typer.Option("--horizon", help="How far to look, e.g. 1h.")] = "1h",
    hosts: HostsOpt = 100,
    vms: VmsOpt = 1000,
    seed: SeedOpt = 0,
) -> None:
    """Rank candidate plans (and doing nothing) by predicted SLO, cost and risk."""
    from rich.console import Console
    from rich.table import Table

    from novacron.twin import HealerParams, Simulator, build_fleet
    from novacron.twin.whatif import PlannedAction, rank_actions

    _check_sizes(hosts, vms)
    horizon_s = parse_duration(horizon, where="--horizon")
    faults = [_parse_injection(x, flag="--fault", n_vms=vms) for x in fault or []]
    plans: list[list[PlannedAction]] = [[]]
    for text in plan or []:
        steps = [_parse_injection(p, flag="--plan", n_vms=vms, action=True) for p in text.split(",") if p.strip()]
        plans.append([PlannedAction(kind, vm) for kind, vm in steps])
    sim = Simulator(build_fleet(hosts, vms, seed=seed), healer=HealerParams(enabled=False), seed=seed)
    sim.advance_to(600.0)  # let temperatures and queues settle
    for kind, vm in faults:
        sim.inject_fault(vm, kind)
    ranked = rank_actions(sim, plans, horizon_s, dt_s=5.0)
    table = Table(title=f"What-if over {horizon}: best first")
    for head in ("plan", "SLO", "avail", "p95 ms", "peak", "down", "cost", "risk"):
        table.add_column(head, justify="left" if head == "plan" else "right")
    for index, result in ranked:
        label = ", ".join(f"{a.kind}:{a.vm}" for a in plans[index]) or "none"
        table.add_row(
            label,
            "ok" if result.slo_ok else "miss",
            f"{result.availability:.2%}",
            f"{1000 * result.p95_latency_s:.0f}",
            f"{result.peak_util:.0%}",
            str(result.vms_down_at_end),
            f"{result.cost:.1f}",
            f"{result.risk:.3f}",
        )
    Console().print(table)


@bench_app.command("twin-fidelity")
def bench_twin_fidelity(
    faults: Annotated[int, typer.Option("--faults", help="Faults per kind in the compared real run.")] = 24,
    calibration_faults: Annotated[
        int, typer.Option("--calibration-faults", help="Faults per kind in the calibration run (crash, hang).")
    ] = 16,
    twin_faults: Annotated[int, typer.Option("--twin-faults", help="Faults per kind on the twin.")] = 200,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (always JSON).")] = True,
) -> None:
    """The twin's predicted MTTD/MTTR per fault kind against a separate real run of the demo fleet."""
    from novacron.benchmarks.twin_fidelity import run_fidelity_bench

    if min(faults, calibration_faults, twin_faults) < 1:
        raise InputError("must be >= 1", where="--faults/--calibration-faults/--twin-faults")
    result = run_fidelity_bench(faults=faults, calibration_faults=calibration_faults, twin_faults=twin_faults)
    print(json.dumps(result, indent=None if as_json else 2))


@bench_app.command("twin-mirror")
def bench_twin_mirror(
    rounds: Annotated[int, typer.Option("--rounds", help="Changes per channel.")] = 12,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (always JSON).")] = True,
) -> None:
    """How fast live changes (health, incidents, other writers) reach the twin's mirror (ms)."""
    from novacron.benchmarks.twin_mirror import bench_mirror_latency

    if rounds < 1:
        raise InputError("must be >= 1", where="--rounds")
    print(json.dumps(bench_mirror_latency(rounds), indent=None if as_json else 2))
