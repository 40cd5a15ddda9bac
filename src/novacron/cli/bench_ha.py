"""``novacron bench ha``: failover, fencing and the disruption budget across controllers on PostgreSQL."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from novacron.cli._app import bench_app
from novacron.errors import InputError

__all__: list[str] = []


@bench_app.command("ha")
def bench_ha(
    controllers: Annotated[int, typer.Option("--controllers", min=2, max=16, help="`novacron run` processes.")] = 3,
    trials: Annotated[
        int, typer.Option("--trials", min=0, max=100_000, help="Fault-and-disrupt trials (0: only the scale run).")
    ] = 30,
    targets: Annotated[int, typer.Option("--targets", min=1, max=1000, help="Remote targets in the trials.")] = 24,
    scale_targets: Annotated[
        int, typer.Option("--scale-targets", min=0, max=10_000, help="Then share this many at 1 s probes (0: skip).")
    ] = 0,
    scale_s: Annotated[float, typer.Option("--scale-seconds", min=5, max=600, help="Length of the scale phase.")] = 30,
    admin_url: Annotated[
        str, typer.Option("--pg", help="A PostgreSQL URL allowed to create and drop a database.")
    ] = "postgresql://postgres@127.0.0.1:5432/postgres",
    max_seconds: Annotated[
        float | None, typer.Option("--max-seconds", min=10, help="Stop starting trials after this long.")
    ] = None,
    modes: Annotated[
        str, typer.Option("--modes", help="Comma-separated disruptions: sigkill,sigstop,terminate_backend,link_cut.")
    ] = "sigkill,sigstop,terminate_backend,link_cut",
    netns: Annotated[
        bool, typer.Option("--netns/--no-netns", help="Controllers on hosts of their own (network namespaces).")
    ] = True,
    progress: Annotated[bool, typer.Option("--progress", help="Report every 10 trials on stderr.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (the default output).")] = True,
) -> None:
    """Several controllers on one PostgreSQL store: SIGKILL, SIGSTOP, pg_terminate_backend and link cuts."""
    from novacron.benchmarks.ha import MODES, run_ha

    chosen = tuple(m.strip() for m in modes.split(",") if m.strip())
    unknown = [m for m in chosen if m not in MODES]
    if unknown or not chosen:
        raise InputError(f"--modes: {', '.join(unknown) or 'none'} (choose from {', '.join(MODES)})", where="--modes")
    result = run_ha(
        controllers=controllers,
        trials=trials,
        targets=targets,
        admin_url=admin_url,
        scale_targets=scale_targets,
        scale_s=scale_s,
        max_seconds=max_seconds,
        modes=chosen,
        netns=netns,
        progress=progress,
    )
    typer.echo(json.dumps(result, indent=None if as_json else 2))
