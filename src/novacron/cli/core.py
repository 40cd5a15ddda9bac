"""Core commands: validate, incidents list/show (``novacron run`` and ``status`` have their own modules)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from novacron.cli._app import app
from novacron.cli._client import ConfigOpt, StoreOpt, open_store, store_url_for
from novacron.cli._output import JsonOpt, console, emit_json
from novacron.errors import InputError

if TYPE_CHECKING:
    from novacron.model import IncidentStatus

__all__ = ["ConfigOpt", "StoreOpt", "incidents_app", "store_url_for"]

incidents_app = typer.Typer(help="Incidents: list, show, postmortem.", no_args_is_help=True)
app.add_typer(incidents_app, name="incidents")


def _when(ts: float | None) -> str:
    return "-" if ts is None else dt.datetime.fromtimestamp(ts, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


@app.command()
def validate(
    config: Annotated[Path, typer.Option("--config", "-c", help="Fleet spec (YAML).", dir_okay=False)],
) -> None:
    """Check a fleet spec; exit 2 with the field's path and the reason if it is invalid."""
    import os

    from novacron.clock import MonotonicClock
    from novacron.healing.metricfaults import MetricJudge
    from novacron.incidents.paging import build_channels
    from novacron.incidents.runbooks.sources import load_sources
    from novacron.runtime.preflight import check_binaries, held_ports
    from novacron.settings import load_spec
    from novacron.store.db import check_url

    spec = load_spec(config)
    check_url(spec.controller.store_url)  # its form and its driver: what `run` opens it with
    build_channels(spec.notify, os.environ)  # every channel's secret is in the environment
    MetricJudge(spec, MonotonicClock(), lambda _fault: None)  # builds every detector, as `run` does
    check_binaries(spec, source=str(config))
    books = load_sources(spec.runbooks, config.resolve().parent)
    for held in held_ports(spec):  # a running fleet holds its own ports: said, not refused
        console().print(f"[yellow]note[/]: {held}", highlight=False)
    console().print(
        f"[green]valid[/]: {spec.name} — {len(spec.targets)} target(s), "
        f"blast radius {spec.policy.blast_radius:.0%}, dry_run={spec.policy.dry_run}, "
        f"{len(spec.notify)} channel(s), {len(books)} runbook(s)"
    )


@incidents_app.command("list")
def incidents_list(
    config: ConfigOpt = None,
    store: StoreOpt = None,
    open_only: Annotated[bool, typer.Option("--open", help="Only unresolved incidents.")] = False,
    status: Annotated[
        str | None,
        typer.Option("--status", help="Only incidents in this state: open, mitigating, resolved or needs_human."),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
    as_json: JsonOpt = False,
) -> None:
    """Incidents, newest first, with MTTD and MTTR (full ids, also in pipes)."""
    from rich.table import Table

    from novacron.api.schemas import IncidentOut

    wanted = _status_filter(status, open_only=open_only)  # bad input is refused before the store is opened
    db = open_store(store, config)
    try:
        if wanted is not None:
            incidents = db.incidents(status=wanted, limit=limit)
        else:
            incidents = db.open_incidents()[::-1][:limit] if open_only else db.incidents(limit=limit)
    finally:
        db.close()
    if as_json:
        emit_json([IncidentOut.of(i).model_dump(mode="json") for i in incidents])
        return
    table = Table(title="incidents")
    for col in ("id", "target", "kind", "status", "prio", "opened", "faults", "MTTD ms", "MTTR ms"):
        table.add_column(col, overflow="fold", no_wrap=col == "id")
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
    console().print(table)


def _status_filter(status: str | None, *, open_only: bool) -> IncidentStatus | None:
    """``--status`` as an incident state (the values of ``GET /incidents?status=``); exit 2 naming them."""
    from novacron.model import ENDED_STATUSES, IncidentStatus

    if status is None:
        return None
    allowed = ", ".join(s.value for s in IncidentStatus)
    try:
        wanted = IncidentStatus(status)
    except ValueError:
        raise InputError(f"unknown status {status!r} (one of {allowed})", where="--status") from None
    if open_only and wanted in ENDED_STATUSES:
        raise InputError(f"{wanted} incidents are not open: give --open or --status {wanted}", where="--status")
    return wanted


@incidents_app.command("show")
def incidents_show(
    incident_id: Annotated[str, typer.Argument(help="Incident id (inc-…).")],
    config: ConfigOpt = None,
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """One incident: summary, timeline and actions."""
    from rich.markup import escape
    from rich.table import Table

    from novacron.api.schemas import ActionOut, IncidentOut, TimelineOut
    from novacron.api.views import acknowledged_by
    from novacron.errors import NotFoundError

    db = open_store(store, config)
    try:
        try:
            inc = db.incident(incident_id)
        except NotFoundError as exc:
            raise InputError(str(exc), where="incident id") from exc
        timeline, records = db.timeline(inc.id), db.actions(incident_id=inc.id, limit=1000)
        acked = acknowledged_by(db, inc.id)
    finally:
        db.close()
    if as_json:
        emit_json(
            {
                "incident": IncidentOut.of(inc).model_dump(mode="json"),
                "timeline": [TimelineOut.of(ev).model_dump(mode="json") for ev in timeline],
                "actions": [ActionOut.of(r).model_dump(mode="json") for r in records],
                "acknowledged_by": acked,
            }
        )
        return
    con = console()
    con.print(f"[bold]{inc.id}[/] {inc.target} — {inc.kind} — {inc.status} — P{int(inc.priority)}")
    con.print(escape(inc.summary) + (f" · acknowledged by {acked}" if acked else ""))
    mttr = "-" if inc.mttr_s is None else f"{inc.mttr_s * 1000:.0f} ms"
    con.print(f"MTTD {inc.mttd_s * 1000:.0f} ms · MTTR {mttr} · faults {inc.fault_count}")
    table = Table(title="timeline")
    for col in ("time", "event", "detail"):
        table.add_column(col, overflow="fold")
    for ev in timeline:
        table.add_row(_when(ev.time), ev.kind, escape(ev.detail))
    con.print(table)
    actions = Table(title="actions")
    for col in ("id", "kind", "status", "by", "detail"):
        actions.add_column(col, overflow="fold", no_wrap=col == "id")
    for rec in reversed(records):
        actions.add_row(
            rec.action.id, rec.action.kind.value, rec.status.value, rec.action.requested_by, escape(rec.detail)
        )
    con.print(actions)
