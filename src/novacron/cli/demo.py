"""``novacron demo``: the whole loop on real local processes, no configuration needed."""

from __future__ import annotations

from typing import Annotated

import typer

from novacron.cli._app import app


@app.command()
def demo(
    duration: Annotated[float, typer.Option("--duration", min=1.0, help="Seconds to run.")] = 60.0,
    seed: Annotated[int, typer.Option("--seed", help="Chaos monkey seed.")] = 1,
    rate: Annotated[float, typer.Option("--rate", min=0.01, max=10.0, help="Faults per second.")] = 0.35,
    vms: Annotated[
        bool, typer.Option("--vms", help="Add two QEMU guests (skipped, saying why, without QEMU).")
    ] = False,
) -> None:
    """Start demo services, the controller and a chaos monkey; show a live table, then a summary."""
    from rich.console import Console

    from novacron.demo.run import run_demo

    console = Console()
    import asyncio

    result = asyncio.run(run_demo(duration_s=duration, seed=seed, console=console, rate_per_s=rate, vms=vms))
    console.print(result.summary())
    # one line, however narrow the console: a command to copy and paste
    store = f"sqlite:///{result.workdir / 'novacron.db'}"
    console.print(f"inspect: novacron incidents list --store {store}", soft_wrap=True)
