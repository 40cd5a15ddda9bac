"""``novacron status``: the controller's liveness and every target's state, from the store.

It never creates a store, and never claims a fleet is healthy on the word of a controller
that is gone: the controller's heartbeat and pid are checked, and with nobody supervising,
targets whose processes are gone show as ``stopped``. Exit code 0 when the controller runs,
3 when it does not (the status is printed either way).
"""

from __future__ import annotations

import time

import typer

from novacron.cli._app import app
from novacron.cli._client import EXIT_UNREACHABLE, ConfigOpt, StoreOpt, open_store
from novacron.cli._output import JsonOpt, console, emit_json

__all__ = ["duration"]

_COLOURS = {"healthy": "green", "healing": "yellow", "starting": "yellow", "quarantined": "magenta"}


def duration(seconds: float | None) -> str:
    """``42s``, ``3m12s``, ``2h05m``, ``3d04h``; ``-`` when unknown."""
    if seconds is None:
        return "-"
    s = int(seconds)
    if s < 60:
        return f"{seconds:.1f}s" if seconds < 10 else f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86_400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86_400}d{s % 86_400 // 3600:02d}h"


@app.command()
def status(config: ConfigOpt = None, store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """The controller's liveness and each target's state, pid, uptime, restarts and last fault.

    Exit 0 when the controller runs; 3 when it does not (or nothing ever ran here).
    """
    from novacron.api.status_view import fleet_status

    db = open_store(store, config)
    try:
        report = fleet_status(db, now=time.time())
    finally:
        db.close()
    _attach_store_condition(report)
    if as_json:
        emit_json(report.model_dump(mode="json"))
    else:
        _print(report)
    if report.controller.state != "running":
        raise typer.Exit(EXIT_UNREACHABLE)


def _attach_store_condition(report: object) -> None:
    """The live controller's store condition, from its ``/health`` (a failing store cannot hold it)."""
    import httpx

    from novacron.api.schemas import StoreConditionOut
    from novacron.api.status_view import StatusOut

    assert isinstance(report, StatusOut)
    c = report.controller
    if c.state not in ("running", "stale") or not c.api_url:
        return
    try:
        body = httpx.get(f"{c.api_url}/health", timeout=1.0).json()
    except (httpx.HTTPError, ValueError):
        return  # the controller's liveness is already told from the store
    if isinstance(body, dict) and isinstance(body.get("store"), dict):
        c.store = StoreConditionOut.model_validate(body["store"])


def _store_line(c: object) -> str | None:
    from novacron.api.status_view import ControllerOut

    assert isinstance(c, ControllerOut)
    s = c.store
    if s is None or not s.degraded:
        return None
    since = "" if s.degraded_since is None else f" for {duration(time.time() - s.degraded_since)}"
    return (
        f"[red]store: degraded{since}[/] · {s.pending_writes} writes waiting in memory · "
        f"last error: {s.last_error} (healing goes on)"
    )


def _controller_line(c: object) -> str:
    from novacron.api.status_view import ControllerOut

    assert isinstance(c, ControllerOut)
    if c.state == "never_started":
        return "[red]controller: never started on this store[/] (`novacron run -c fleet.yaml`)"
    seen = f"last write {duration(c.last_write_s_ago)} ago"
    if c.state == "running":
        auto = "on" if c.autonomous else "[red]off (kill switch)[/]"
        if c.dry_run:
            auto += " · [yellow]dry run: decisions are recorded, nothing is touched[/]"
        return (
            f"[green]controller: running[/] pid {c.pid} · up {duration(c.uptime_s)} · {seen} · "
            f"API {c.api_url} · autonomous healing {auto}"
        )
    why = {
        "stale": f"[yellow]controller: stale[/] pid {c.pid} has written nothing for {duration(c.last_write_s_ago)}",
        "down": f"[red]controller: down[/] pid {c.pid} is gone without stopping ({seen})",
        "stopped": f"[yellow]controller: stopped[/] (pid {c.pid}, {seen})",
    }[c.state]
    return why + "\n[yellow]nothing is supervised now: target states are as last recorded, checked against pids[/]"


def _print(report: object) -> None:
    from rich.markup import escape
    from rich.table import Table

    from novacron.api.status_view import StatusOut

    assert isinstance(report, StatusOut)
    out = console()
    out.print(_controller_line(report.controller), highlight=False)
    if (line := _store_line(report.controller)) is not None:
        out.print(line, highlight=False)
    if report.learning is not None:
        lrn = report.learning
        colour = "yellow" if lrn.acting != lrn.learner else "green"
        detail = f" · {escape(lrn.reason)}" if lrn.reason else ""
        out.print(
            f"learning: [{colour}]{lrn.acting}[/] chooses the steps (learner {lrn.learner}){detail}", highlight=False
        )
    if len(report.nodes) > 1:  # several controllers share this store: who is up and owns what
        from novacron.cli.node import node_table

        out.print(f"nodes: {len(report.nodes)}")
        out.print(node_table(report.nodes))
    if not report.targets:
        out.print("no target status recorded yet")
        return
    table = Table(box=None, pad_edge=False)
    for col in ("TARGET", "STATE", "PID", "UPTIME", "RESTARTS", "REPLICAS", "LAST FAULT", "INCIDENT"):
        table.add_column(col, overflow="fold")
    for t in report.targets:
        colour = _COLOURS.get(t.state, "red")
        fault = "-"
        if t.last_fault is not None:
            fault = f"{escape(t.last_fault.detail)} ({duration(t.last_fault.ago_s)} ago)"
        incident = f"{t.incident} {t.incident_status} {t.incident_priority}" if t.incident else "-"
        state = t.state
        if t.quarantined_until is not None:
            state += f" until {time.strftime('%H:%M:%S', time.localtime(t.quarantined_until))}"
        table.add_row(
            t.name,
            f"[{colour}]{state}[/]",
            ",".join(map(str, t.pids)) or "-",
            duration(t.uptime_s),
            str(t.restarts),
            f"{t.running}/{t.desired}",
            fault,
            incident,
        )
    out.print(table)
