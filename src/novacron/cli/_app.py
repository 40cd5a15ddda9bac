"""The Typer apps every command module registers on."""

from __future__ import annotations

import typer

__all__ = ["app", "bench_app"]

app = typer.Typer(
    name="novacron",
    help="NovaCron Autonomous: detect, heal, verify, predict.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
bench_app = typer.Typer(help="Benchmarks; each prints one JSON object.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")
