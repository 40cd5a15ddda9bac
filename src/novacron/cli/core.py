"""Core commands: validate, run, status, incidents."""

from __future__ import annotations

import asyncio
import datetime as dt
import signal
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from novacron.cli._app import app
from novacron.errors import ConfigError, InputError
from novacron.model import Incident
from novacron.settings import ControllerSettings, load_spec

__all__ = ["ConfigOpt", "StoreOpt", "store_url_for"]

ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="Fleet spec (YAML).", dir_okay=False)]
StoreOpt = Annotated[
    str | None, typer.Option("--store", help="Database URL (default: the spec's, or .novacron/novacron.db).")
]
incidents_app = typer.Typer(help="Incidents: list, show.", no_args_is_help=True)
app.add_typer(incidents_app, name="incidents")


def store_url_for(store: str | None, config: Path | None) -> str:
    """The store URL from --store, else the spec's, else the default."""
    if store:
        return store
    if config is not None:
        return load_spec(config).controller.store_url
    return ControllerSettings().store_url


def _when(ts: float | None) -> str:
    return "-" if ts is None else dt.datetime.fromtimestamp(ts, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


@app.command()
def validate(config: ConfigOpt) -> None:
    """Check a fleet spec; exit 2 with the field's path and the reason if it is invalid."""
    spec = load_spec(config)
    Console().print(
        f"[green]valid[/]: {spec.name} — {len(spec.targets)} target(s), "
        f"blast radius {spec.policy.blast_radius:.0%}, dry_run={spec.policy.dry_run}"
    )


@app.command()
def run(
    config: ConfigOpt,
    store: StoreOpt = None,
    metrics_port: Annotated[int | None, typer.Option(help="Serve Prometheus /metrics on this port.")] = None,
    api_port: Annotated[
        int | None, typer.Option(help="Serve the HTTP API and dashboard on this port (default: the spec's api_port).")
    ] = None,
    api_host: Annotated[str, typer.Option(help="Address the API listens on.")] = "127.0.0.1",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Decide and record, touch nothing.")] = False,
) -> None:
    """Supervise and heal the fleet in the spec until interrupted (SIGINT/SIGTERM)."""
    from novacron.runtime.controller import Controller
    from novacron.telemetry import configure_logging

    spec = load_spec(config)
    if dry_run:
        spec = spec.model_copy(update={"policy": spec.policy.model_copy(update={"dry_run": True})})
    configure_logging()
    controller = Controller(spec, store_url=store, spec_source=str(config))
    port = metrics_port if metrics_port is not None else spec.controller.metrics_port
    api = api_port if api_port is not None else spec.controller.api_port
    asyncio.run(_serve(controller, port, api, api_host))


async def _serve(controller: object, metrics_port: int | None, api_port: int | None = None, api_host: str = "") -> None:
    from prometheus_client import start_http_server

    from novacron.runtime.controller import Controller

    assert isinstance(controller, Controller)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if metrics_port is not None:
        start_http_server(metrics_port, addr="127.0.0.1", registry=controller.metrics.registry)
    await controller.start()
    server_task = None
    if api_port is not None:
        from novacron.api import create_app
        from novacron.api.serve import make_server

        # Same loop as the controller: API handlers read and steer it without locks.
        server = make_server(create_app(controller), host=api_host or "127.0.0.1", port=api_port, embedded=True)
        server_task = loop.create_task(_serve_api(server.serve()), name="api")
        server_task.add_done_callback(lambda _t: stop.set())  # a failed bind must not leave a headless controller
    try:
        await stop.wait()
    finally:
        if server_task is not None:
            server.should_exit = True
            await asyncio.gather(server_task, return_exceptions=True)
        await controller.stop()
    if server_task is not None and not server_task.cancelled() and server_task.exception() is not None:
        raise ConfigError(f"cannot serve the API on port {api_port}", where="api_port") from server_task.exception()


async def _serve_api(serving: Coroutine[Any, Any, None]) -> None:
    """Run uvicorn; its start-up failures (a port in use) exit the process, so turn them into errors."""
    try:
        await serving
    except SystemExit as exc:
        raise RuntimeError(f"uvicorn exited with {exc.code}") from None


@app.command()
def status(config: Annotated[Path | None, typer.Option("--config", "-c")] = None, store: StoreOpt = None) -> None:
    """The fleet's latest status as recorded by the controller."""
    from novacron.store import Store

    db = Store.open(store_url_for(store, config))
    rows = db.target_statuses()
    open_by_target: dict[str, Incident] = {inc.target: inc for inc in db.open_incidents()}
    table = Table(title="fleet status")
    for col in ("target", "health", "replicas", "open incident", "updated"):
        table.add_column(col)
    for row in rows:
        inc = open_by_target.get(row.target)
        colour = "green" if row.health == "healthy" else "red"
        table.add_row(
            row.target,
            f"[{colour}]{row.health}[/]",
            f"{row.running}/{row.desired}",
            f"{inc.id} {inc.status} P{int(inc.priority)}" if inc else "-",
            _when(row.updated_at),
        )
    Console().print(table if rows else "no status recorded yet: has `novacron run` been started on this store?")


@incidents_app.command("list")
def incidents_list(
    config: Annotated[Path | None, typer.Option("--config", "-c")] = None,
    store: StoreOpt = None,
    open_only: Annotated[bool, typer.Option("--open", help="Only unresolved incidents.")] = False,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
) -> None:
    """Incidents, newest first, with MTTD and MTTR."""
    from novacron.store import Store

    db = Store.open(store_url_for(store, config))
    incidents = db.open_incidents() if open_only else db.incidents(limit=limit)
    table = Table(title="incidents")
    for col in ("id", "target", "kind", "status", "prio", "opened", "faults", "MTTD ms", "MTTR ms"):
        table.add_column(col)
    for inc in incidents:
        mttr = inc.mttr_s
        table.add_row(
            inc.id,
            inc.target,
            inc.kind.value,
            inc.status.value,
            f"P{int(inc.priority)}",
            _when(inc.opened_at),
            str(inc.fault_count),
            f"{inc.mttd_s * 1000:.0f}",
            "-" if mttr is None else f"{mttr * 1000:.0f}",
        )
    Console().print(table)


@incidents_app.command("show")
def incidents_show(
    incident_id: Annotated[str, typer.Argument(help="Incident id (inc-…).")],
    config: Annotated[Path | None, typer.Option("--config", "-c")] = None,
    store: StoreOpt = None,
) -> None:
    """One incident: summary, timeline and actions."""
    from novacron.errors import NotFoundError
    from novacron.store import Store

    db = Store.open(store_url_for(store, config))
    try:
        inc = db.incident(incident_id)
    except NotFoundError as exc:
        raise InputError(str(exc), where="incident id") from exc
    con = Console()
    con.print(f"[bold]{inc.id}[/] {inc.target} — {inc.kind} — {inc.status} — P{int(inc.priority)}")
    con.print(inc.summary)
    mttr = "-" if inc.mttr_s is None else f"{inc.mttr_s * 1000:.0f} ms"
    con.print(f"MTTD {inc.mttd_s * 1000:.0f} ms · MTTR {mttr} · faults {inc.fault_count}")
    timeline = Table(title="timeline")
    for col in ("time", "event", "detail"):
        timeline.add_column(col)
    for ev in db.timeline(inc.id):
        timeline.add_row(_when(ev.time), ev.kind, ev.detail)
    con.print(timeline)
    actions = Table(title="actions")
    for col in ("id", "kind", "status", "by", "detail"):
        actions.add_column(col)
    for rec in reversed(db.actions(incident_id=inc.id)):
        actions.add_row(rec.action.id, rec.action.kind.value, rec.status.value, rec.action.requested_by, rec.detail)
    con.print(actions)
