"""API commands: serve the API alone, manage tokens, write post-mortems."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from novacron.cli._app import app, bench_app
from novacron.cli._client import open_store
from novacron.cli._output import JsonOpt, console, emit_json, write_file
from novacron.cli.core import StoreOpt, incidents_app, store_url_for
from novacron.errors import InputError, NotFoundError

if TYPE_CHECKING:
    from novacron.store import Store

__all__: list[str] = []

OptionalConfig = Annotated[Path | None, typer.Option("--config", "-c", help="Fleet spec (for its store URL).")]
tokens_app = typer.Typer(help="API tokens: create (shown once), list, revoke.", no_args_is_help=True)
app.add_typer(tokens_app, name="tokens")


@app.command("api")
def api(
    config: OptionalConfig = None,
    store: StoreOpt = None,
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on.")] = 8080,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
) -> None:
    """Serve the API and dashboard over a store, without a controller (read-only views and tokens).

    Calls that steer the controller (kill switch, heal, rollback, approvals, intake) answer
    503 here; `novacron run --api-port P` serves them beside the controller. A store that does
    not exist is refused as `status` refuses it (exit 3): serving a new, empty one would hide a
    mistyped path.
    """
    import asyncio

    from novacron.api import create_app
    from novacron.api.serve import make_server
    from novacron.telemetry import configure_logging

    db = open_store(store, config)
    configure_logging()
    try:
        asyncio.run(make_server(create_app(db), host=host, port=port).serve())
    finally:
        db.close()


@tokens_app.command("create")
def tokens_create(
    role: Annotated[str, typer.Option("--role", "-r", help="viewer, operator or admin.")],
    name: Annotated[
        str | None, typer.Option("--name", "-n", help="Shown in the audit trail (default: role-<time>).")
    ] = None,
    config: OptionalConfig = None,
    store: StoreOpt = None,
    create_store: Annotated[
        bool,
        typer.Option(
            "--create-store", help="Create the store if it does not exist yet (a token before the first `run`)."
        ),
    ] = False,
) -> None:
    """Create a token and print it once; only its hash is stored.

    A store that does not exist is refused (exit 2) unless --create-store says to create it:
    a token written to a new store at a mistyped path would never be accepted by the API.
    """
    from rich.console import Console

    from novacron.store.tokens import TokenStore

    if name is not None and not name.strip():  # refused before the store is opened: nothing is created
        raise InputError("a token's name cannot be empty (leave --name out for role-<time>)", where="--name")
    db = _token_store(store, config, create=create_store)
    try:
        now = time.time()
        record, secret = TokenStore(db).create(f"{role}-{int(now)}" if name is None else name, role, now=now)
        db.audit(now=now, actor="cli", verb="tokens.create", subject=record.name, result="ok", role=record.role.value)
    finally:
        db.close()
    err = Console(stderr=True)
    err.print(f"created token [bold]{record.name}[/] ({record.role}); it is shown only this once:")
    typer.echo(secret)


def _token_store(store: str | None, config: Path | None, *, create: bool) -> Store:
    """The store tokens are written to; a missing one only with ``create`` (bad input otherwise)."""
    from novacron.store import Store

    try:
        return Store.open(store_url_for(store, config), create=create)
    except NotFoundError as exc:
        where = "--config" if config is not None and not store else "--store"
        raise InputError(
            f"{exc}: check the path, or pass --create-store to create it (before the first `novacron run`)",
            where=where,
        ) from exc


@tokens_app.command("list")
def tokens_list(config: OptionalConfig = None, store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Every token's name, role and state (never the secret)."""
    from rich.table import Table

    from novacron.store.tokens import TokenStore

    db = open_store(store, config)
    try:
        tokens = TokenStore(db).list()
    finally:
        db.close()
    if as_json:
        emit_json(
            [
                {"name": t.name, "role": t.role.value, "id": t.id, "created_at": t.created_at, "active": t.active}
                for t in tokens
            ]
        )
        return
    table = Table(title="API tokens")
    for col in ("name", "role", "id", "created", "state"):
        table.add_column(col, overflow="fold")
    for tok in tokens:
        created = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(tok.created_at))
        table.add_row(tok.name, tok.role.value, tok.id, created, "active" if tok.active else "revoked")
    console().print(table)


@tokens_app.command("revoke")
def tokens_revoke(
    name: Annotated[str, typer.Argument(help="The token's name.")],
    config: OptionalConfig = None,
    store: StoreOpt = None,
) -> None:
    """Revoke a token (running APIs stop accepting it within 5 s)."""
    from rich.console import Console

    from novacron.store.tokens import TokenStore

    db = open_store(store, config)
    try:
        now = time.time()
        try:
            TokenStore(db).revoke(name, now=now)
        except NotFoundError as exc:
            raise InputError(str(exc), where="name") from exc
        db.audit(now=now, actor="cli", verb="tokens.revoke", subject=name, result="ok")
    finally:
        db.close()
    Console().print(f"revoked {name}")


@incidents_app.command("postmortem")
def incidents_postmortem(
    incident_id: Annotated[str, typer.Argument(help="Incident id (inc-…).")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")] = None,
    config: OptionalConfig = None,
    store: StoreOpt = None,
) -> None:
    """Write an incident's post-mortem as Markdown, from its own record."""
    from rich.console import Console

    from novacron.api.views import postmortem_for
    from novacron.incidents.postmortem import render_markdown

    db = open_store(store, config)
    try:
        try:
            text = render_markdown(postmortem_for(db, incident_id))
        except NotFoundError as exc:
            raise InputError(str(exc), where="incident id") from exc
    finally:
        db.close()
    if output is None:
        typer.echo(text)
    else:
        write_file(output, text, flag="--output")
        Console(stderr=True).print(f"wrote {output}")


@bench_app.command("api")
def bench_api(
    intake: Annotated[int, typer.Option("--intake-requests", min=100, help="Webhook deliveries to send.")] = 20_000,
    listing: Annotated[int, typer.Option("--list-requests", min=100, help="GET /incidents calls.")] = 4_000,
    connections: Annotated[int, typer.Option(min=1, max=1000, help="Concurrent connections.")] = 200,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (the default output).")] = True,
) -> None:
    """Alertmanager intake and incident listing on loopback; print throughput and latency as JSON."""
    import json

    from novacron.benchmarks.api import run_api_bench

    result = run_api_bench(intake_requests=intake, list_requests=listing, connections=connections)
    typer.echo(json.dumps(result, indent=None if as_json else 2))
