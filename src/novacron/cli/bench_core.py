"""``novacron bench healing`` and ``novacron bench probes``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from novacron.cli._app import bench_app


@bench_app.command("healing")
def bench_healing(
    faults: Annotated[int, typer.Option("--faults", min=1, help="Faults to inject.")] = 40,
    kinds: Annotated[str, typer.Option("--kinds", help="Comma-separated: crash,hang,dependency.")] = "crash,hang",
    config: Annotated[Path | None, typer.Option("--config", "-c", help="Your own fleet spec.")] = None,
    target: Annotated[str | None, typer.Option("--target", help="With -c: the target to inject into.")] = None,
    load: Annotated[int, typer.Option("--load", help="Busy-loop processes kept running during the bench.")] = 0,
    timeouts: Annotated[
        str, typer.Option("--timeouts", help="adaptive (learned probe timeouts) or fixed (the spec's timeout_s).")
    ] = "adaptive",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (the default output).")] = True,
) -> None:
    """Inject faults into real services; print detection and repair times as JSON."""
    from novacron.benchmarks.healing import run_healing_bench
    from novacron.settings import load_spec

    spec = load_spec(config) if config is not None else None
    result = run_healing_bench(
        faults=faults,
        kinds=[k.strip() for k in kinds.split(",") if k.strip()],
        spec=spec,
        target=target,
        load=load,
        timeouts=timeouts,
    )
    typer.echo(json.dumps(result, indent=None if as_json else 2))


@bench_app.command("probes")
def bench_probes(
    targets: Annotated[int, typer.Option("--targets", min=1, max=5000, help="HTTP targets to probe.")] = 500,
    interval_ms: Annotated[float, typer.Option("--interval-ms", min=50.0, help="Probe interval per target.")] = 100.0,
    duration: Annotated[float, typer.Option("--duration", min=1.0, help="Measured seconds.")] = 10.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (the default output).")] = True,
) -> None:
    """Probe many targets at a high rate; print throughput, loop lag and CPU as JSON."""
    from novacron.benchmarks.probes import run_probe_bench

    result = run_probe_bench(targets=targets, interval_ms=interval_ms, duration_s=duration)
    typer.echo(json.dumps(result, indent=None if as_json else 2))


@bench_app.command("footprint")
def bench_footprint(
    targets: Annotated[str, typer.Option("--targets", help="Comma-separated fleet sizes.")] = "1,100",
    idle_s: Annotated[float, typer.Option("--idle-s", min=1.0, help="Seconds of idle CPU measured.")] = 10.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (the default output).")] = True,
) -> None:
    """RSS, start-to-first-probe and idle CPU of `novacron run` itself, per fleet size, as JSON."""
    from novacron.benchmarks.footprint import run_footprint_bench
    from novacron.errors import InputError

    try:
        sizes = [int(n) for n in targets.split(",") if n.strip()]
    except ValueError:
        raise InputError(f"not a comma-separated list of numbers: {targets!r}", where="--targets") from None
    result = run_footprint_bench(targets=sizes, idle_s=idle_s)
    typer.echo(json.dumps(result, indent=None if as_json else 2))


@bench_app.command("bugfix")
def bench_bugfix(
    only: Annotated[str | None, typer.Option("--only", help="Comma-separated corpus program names.")] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Only the first N programs.")] = None,
    budget: Annotated[float, typer.Option("--budget", min=1.0, help="Seconds per program.")] = 300.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (the default output).")] = True,
) -> None:
    """Run the bug fixer over the shipped corpus; print fixed, plausible-but-wrong and time as JSON."""
    from novacron.benchmarks.bugfix import run_bugfix_bench

    names = [n.strip() for n in only.split(",") if n.strip()] if only else None
    result = run_bugfix_bench(only=names, limit=limit, budget_s=budget)
    typer.echo(json.dumps(result, indent=None if as_json else 2))


@bench_app.command("agents")
def bench_agents(
    leaks_per_kind: Annotated[int, typer.Option("--leaks-per-kind", min=1, help="Synthetic series per kind.")] = 15,
    demo_seconds: Annotated[float, typer.Option("--demo-seconds", min=5.0, help="Real leaking service run.")] = 45.0,
    no_demo: Annotated[bool, typer.Option("--no-demo", help="Skip the real demo-fleet part.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (the default output).")] = True,
) -> None:
    """Exhaustion, circuit breaker and scaling adjuster figures as one JSON object."""
    from novacron.benchmarks.agents import run_agents_bench

    result = run_agents_bench(leaks_per_kind=leaks_per_kind, demo_seconds=demo_seconds, with_demo=not no_demo)
    typer.echo(json.dumps(result, indent=None if as_json else 2))


@bench_app.command("tuning")
def bench_tuning(
    reference: Annotated[int, typer.Option("--reference", min=1, help="Random-search draws for the reference.")] = 2000,
    seeds: Annotated[int, typer.Option("--seeds", min=1, help="Optimiser seeds (medians over them).")] = 10,
    budget: Annotated[int, typer.Option("--budget", min=2, help="Evaluations per optimiser run.")] = 50,
    zdt1_generations: Annotated[int, typer.Option("--zdt1-generations", min=1)] = 400,
    generations: Annotated[int, typer.Option("--generations", min=1, help="Layout search generations.")] = 30,
    population: Annotated[int, typer.Option("--population", min=4, help="Layout search population.")] = 16,
    candidates: Annotated[int, typer.Option("--candidates", min=1, help="Twin candidates timed on Dask.")] = 64,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Worker processes (pool and Dask).")] = 2,
    rounds: Annotated[int, typer.Option("--rounds", min=1, help="Alternating serial/Dask timing rounds.")] = 3,
    only: Annotated[str, typer.Option("--only", help="Comma-separated sections: bo,nsga2,dask.")] = "bo,nsga2,dask",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (the default output).")] = True,
) -> None:
    """BO against random search and TPE, NSGA-II on ZDT1 and fleet layouts, Dask speedup; one JSON object."""
    from novacron.benchmarks.tuning import run_tuning_bench

    result = run_tuning_bench(
        reference=reference,
        seeds=seeds,
        budget=budget,
        zdt1_generations=zdt1_generations,
        generations=generations,
        population=population,
        candidates=candidates,
        workers=workers,
        rounds=rounds,
        only=[s.strip() for s in only.split(",") if s.strip()],
    )
    typer.echo(json.dumps(result, indent=None if as_json else 2))
