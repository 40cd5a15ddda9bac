"""``novacron runbooks schema|validate|list|dry-run``: inspect runbook files without acting."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from novacron.cli._app import app
from novacron.errors import InputError

# Runbook modules only pull in pydantic and PyYAML, which the CLI loads anyway for fleet specs.

__all__ = ["runbooks_app"]

runbooks_app = typer.Typer(help="Runbooks: export the schema, validate, list, dry-run.", no_args_is_help=True)
app.add_typer(runbooks_app, name="runbooks")

FileOpt = Annotated[Path, typer.Option("--file", "-f", help="Runbook YAML file.", dir_okay=False)]
PathOpt = Annotated[Path, typer.Option("--file", "-f", help="Runbook YAML file or a directory of them.")]


@runbooks_app.command("schema")
def schema() -> None:
    """Print the JSON Schema of a runbook document."""
    from novacron.incidents.runbooks import runbook_json_schema

    typer.echo(json.dumps(runbook_json_schema(), indent=2))


@runbooks_app.command("validate")
def validate(file: FileOpt) -> None:
    """Check a runbook file; exit 2 naming the runbook and step if it is invalid."""
    from rich.console import Console

    from novacron.incidents.runbooks import load_runbooks

    books = load_runbooks(file)
    steps = sum(len(b.spec.steps) for b in books)
    Console().print(f"[green]valid[/]: {file} — {len(books)} runbook(s), {steps} step(s)")


@runbooks_app.command("list")
def list_(path: PathOpt) -> None:
    """List the runbooks in a file or directory with what they match."""
    from rich.console import Console
    from rich.table import Table

    from novacron.incidents.runbooks import load_runbooks

    table = Table("runbook", "kinds", "labels", "steps", "description")
    for book in load_runbooks(path):
        match = book.spec.match
        table.add_row(
            book.name,
            ", ".join(k.value for k in match.kinds) or "any",
            ", ".join(f"{k}={v}" for k, v in match.labels.items()) or "any",
            " → ".join(f"{s.name}({s.action.value})" for s in book.spec.steps),
            book.description,
        )
    Console().print(table)


@runbooks_app.command("dry-run")
def dry_run_cmd(
    file: FileOpt,
    target: Annotated[str, typer.Option(help="Target the incident is on.")] = "target",
    kind: Annotated[str, typer.Option(help="Fault kind of the incident.")] = "crash",
    name: Annotated[str | None, typer.Option(help="Runbook name (default: the first in the file).")] = None,
    fail: Annotated[str, typer.Option(help="Comma-separated step outcomes, e.g. 'ok,fail'.")] = "",
) -> None:
    """Show the actions a runbook would take, assuming success unless --fail says otherwise."""
    for line in _preview(file, target=target, kind=kind, name=name, outcomes=fail):
        typer.echo(line)


def _outcomes(text: str) -> list[bool]:
    out: list[bool] = []
    for i, word in enumerate(w.strip().lower() for w in text.split(",") if w.strip()):
        if word not in {"ok", "fail"}:
            raise InputError(f"item {i} is {word!r}; use 'ok' or 'fail'", where="--fail")
        out.append(word == "ok")
    return out


def _preview(file: Path, *, target: str, kind: str, name: str | None, outcomes: str) -> Iterator[str]:
    """Lines describing each planned action and the runbook's end state."""
    from novacron.incidents.runbooks import RunbookContext, dry_run, load_runbooks
    from novacron.model import FaultKind, Incident, IncidentId, IncidentStatus, Priority, TargetId

    try:
        fault_kind = FaultKind(kind)
    except ValueError as exc:
        raise InputError(f"unknown fault kind {kind!r}", where="--kind") from exc
    books = load_runbooks(file)
    chosen = books[0] if name is None else next((b for b in books if b.name == name), None)
    if chosen is None:
        raise InputError(f"no runbook named {name!r} in {file}", where="--name")
    incident = Incident(
        id=IncidentId("dry-run"),
        target=TargetId(target),
        kind=fault_kind,
        status=IncidentStatus.OPEN,
        priority=Priority.P3,
        opened_at=0.0,
        since=0.0,
    )
    plan = dry_run(chosen, RunbookContext(incident), _outcomes(outcomes))
    for n, step in enumerate(plan.steps, 1):
        a, o = step.action, step.outcome
        params = {k: v for k, v in a.params.items() if k not in {"runbook", "step"}}
        verdict = "ok" if o.ok else "fail"
        head = f"{n}. {a.params.get('step')}: {a.kind.value} {a.target} risk={a.risk.label}"
        yield f"{head} {params} -> {verdict}"
    yield f"result: {plan.result.status}" + (f" ({plan.result.detail})" if plan.result.detail else "")
