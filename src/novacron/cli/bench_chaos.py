"""``novacron bench chaos``: the controller SIGKILLed at random instants around service crashes."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from novacron.cli._app import bench_app

__all__: list[str] = []


@bench_app.command("chaos")
def bench_chaos(
    trials: Annotated[int, typer.Option("--trials", min=1, max=10_000, help="Crash + controller kill trials.")] = 20,
    window_ms: Annotated[
        float, typer.Option("--window-ms", min=0, max=60_000, help="The controller dies 0..this ms after the crash.")
    ] = 40.0,
    services: Annotated[int, typer.Option("--services", min=1, max=100, help="Services in the fleet.")] = 4,
    seed: Annotated[int, typer.Option("--seed", help="Same seed, same kill instants.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (the default output).")] = True,
) -> None:
    """Crash a service, SIGKILL the controller, restart it; count orphans, lost faults, double restarts."""
    from novacron.benchmarks.chaos import run_chaos

    result = run_chaos(trials=trials, window_ms=window_ms, seed=seed, services=services)
    typer.echo(json.dumps(result, indent=None if as_json else 2))
