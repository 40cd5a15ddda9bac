"""The Typer apps every command module registers on, with ``--version`` and shell completion."""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = ["app", "bench_app"]

app = typer.Typer(
    name="novacron",
    help="NovaCron Autonomous: detect, heal, verify, predict.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,  # --install-completion / --show-completion for bash, zsh, fish, PowerShell
)
bench_app = typer.Typer(help="Benchmarks; each prints one JSON object.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")


def _version(value: bool) -> None:
    if value:
        from novacron import __version__

        typer.echo(f"novacron {__version__}")
        raise typer.Exit


@app.callback()
def _root(
    _version_flag: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """NovaCron Autonomous: detect, heal, verify, predict.

    Exit codes: 0 ok, 1 failed, 2 bad input, 3 controller (or its store) not reachable.
    """


@bench_app.callback()
def _bench() -> None:
    """Benchmarks; each prints one JSON object on stdout."""
    from novacron.telemetry import configure_logging

    # The controllers a bench runs in this process log as they heal; unconfigured, those
    # lines would go to stdout ahead of the one JSON object a bench promises there.
    configure_logging()
