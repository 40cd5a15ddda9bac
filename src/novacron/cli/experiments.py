"""``novacron bench experiments``: always-valid statistics and canaries, measured."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from novacron.cli._app import bench_app


@bench_app.command("experiments")
def bench_experiments(
    experiments: Annotated[int, typer.Option("--experiments", min=100, help="Simulated A/A experiments.")] = 2000,
    looks: Annotated[int, typer.Option("--looks", min=10, help="Looks per simulated experiment.")] = 100,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the simulated traffic.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (the default output).")] = True,
) -> None:
    """False positives under A/A with peeking, power and samples to decision; prints JSON."""
    from novacron.benchmarks.experiments_stats import run_stats_bench

    result = run_stats_bench(experiments=experiments, looks=looks, seed=seed)
    typer.echo(json.dumps(result, indent=None if as_json else 2))
