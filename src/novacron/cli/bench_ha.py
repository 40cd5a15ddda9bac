"""``novacron bench ha``: failover, fencing and the disruption budget across controllers on PostgreSQL."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from novacron.cli._app import bench_app

__all__: list[str] = []


@bench_app.command("ha")
def bench_ha(
    controllers: Annotated[int, typer.Option("--controllers", min=2, max=16, help="`novacron run` processes.")] = 3,
    trials: Annotated[int, typer.Option("--trials", min=1, max=100_000, help="Fault-and-disrupt trials.")] = 30,
    targets: Annotated[int, typer.Option("--targets", min=1, max=1000, help="Remote targets in the trials.")] = 24,
    scale_targets: Annotated[
        int, typer.Option("--scale-targets", min=0, max=10_000, help="Then share this many at 1 s probes (0: skip).")
    ] = 0,
    scale_s: Annotated[float, typer.Option("--scale-seconds", min=5, max=600, help="Length of the scale phase.")] = 30,
    admin_url: Annotated[
        str, typer.Option("--pg", help="A PostgreSQL URL allowed to create and drop a database.")
    ] = "postgresql://postgres@127.0.0.1:5432/postgres",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (the default output).")] = True,
) -> None:
    """Several controllers on one PostgreSQL store: SIGKILL, SIGSTOP and pg_terminate_backend while targets fail."""
    from novacron.benchmarks.ha import run_ha

    result = run_ha(
        controllers=controllers,
        trials=trials,
        targets=targets,
        admin_url=admin_url,
        scale_targets=scale_targets,
        scale_s=scale_s,
    )
    typer.echo(json.dumps(result, indent=None if as_json else 2))
