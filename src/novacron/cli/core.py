"""Core commands: validate a fleet spec."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from novacron.cli._app import app
from novacron.settings import load_spec

ConfigOpt = Annotated[
    Path, typer.Option("--config", "-c", help="Fleet spec (YAML).", exists=False, dir_okay=False)
]


@app.command()
def validate(config: ConfigOpt) -> None:
    """Check a fleet spec; exit 2 with the field's path and the reason if it is invalid."""
    spec = load_spec(config)
    Console().print(
        f"[green]valid[/]: {spec.name} — {len(spec.targets)} target(s), "
        f"blast radius {spec.policy.blast_radius:.0%}, dry_run={spec.policy.dry_run}"
    )
