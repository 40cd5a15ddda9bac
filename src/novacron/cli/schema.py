"""``novacron schema``: the JSON Schema of the fleet spec, for editors and CI to validate specs with."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from novacron.cli._app import app
from novacron.cli._output import write_file

__all__ = ["fleet_schema"]

SCHEMA_ID = "https://novacron.dev/schema/fleet.json"


def fleet_schema() -> dict[str, Any]:
    """The fleet spec's JSON Schema (draft 2020-12), generated from the same models that validate it."""
    from novacron.settings import FleetSpec

    schema = FleetSpec.model_json_schema(mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "NovaCron fleet spec",
        **{k: v for k, v in schema.items() if k != "title"},
    }


@app.command()
def schema(
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")] = None,
) -> None:
    """Print the JSON Schema of the fleet spec (for editors: `# yaml-language-server: $schema=…`)."""
    import json

    text = json.dumps(fleet_schema(), indent=2) + "\n"
    if output is None:
        typer.echo(text, nl=False)
    else:
        write_file(output, text, flag="--output")
        typer.echo(f"wrote {output}", err=True)
