"""Steering the running controller: restart, stop, start, heal, ack, unquarantine, disable, enable.

Every command goes through the controller's API, so it takes the one executor and safety
gate like any other caller and lands in the audit trail under the token's name. The
controller is found from the store (``-c fleet.yaml`` or ``--store``) or ``--api``; see
:mod:`novacron.cli._client` for the token and the exit codes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from novacron.cli._app import app
from novacron.cli._client import EXIT_FAILED, ApiOpt, ConfigOpt, ControllerApi, StoreOpt, TokenFileOpt
from novacron.cli._output import JsonOpt, console, emit_json

__all__: list[str] = []

WaitOpt = Annotated[
    float, typer.Option("--wait", min=0, max=120, help="Seconds to wait for the verified result (then it carries on).")
]
_GOOD = {"verified", "applied", "dry_run", "running"}
_PANEL = "Steer the running controller"
_ACTIONS = ("restart", "stop", "start", "replace", "scale_out", "scale_in", "config_rollback", "cleanup")


def _api(config: Path | None, store: str | None, api: str | None, token_file: Path | None) -> ControllerApi:
    return ControllerApi.locate(config=config, store=store, api=api, token_file=token_file)


def _act(ctl: ControllerApi, target: str, action: str, wait: float, as_json: bool) -> None:
    res = ctl.call("POST", "/autonomous/heal", {"target": target, "action": action, "wait_s": wait}, wait_s=wait)
    if as_json:
        emit_json(res)
    else:
        status = str(res["status"])
        colour = "green" if status in _GOOD else "red"
        note = f"still running after {wait:g}s; it carries on and is audited" if status == "running" else res["detail"]
        ident = f" ({res['action_id']})" if res.get("action_id") else ""
        console().print(f"{action} {target}: [{colour}]{status}[/] — {note}{ident}", highlight=False)
    if res["status"] not in _GOOD:
        raise typer.Exit(EXIT_FAILED)


def _target_command(action: str, doc: str) -> None:
    """Register ``novacron ACTION TARGET``: one catalog action through the API, waiting for its verification."""

    def command(
        target: Annotated[str, typer.Argument(help="Target name.")],
        wait: WaitOpt = 15.0,
        as_json: JsonOpt = False,
        config: ConfigOpt = None,
        store: StoreOpt = None,
        api: ApiOpt = None,
        token_file: TokenFileOpt = None,
    ) -> None:
        _act(_api(config, store, api, token_file), target, action, wait, as_json)

    command.__doc__ = doc
    app.command(action, rich_help_panel=_PANEL)(command)


_target_command("restart", "Restart a target's replicas through the executor; exit 1 unless verified healthy.")
_target_command("stop", "Stop a target's replicas (SIGTERM, then SIGKILL after its stop timeout).")
_target_command("start", "Start a target's missing replicas; exit 1 unless verified healthy.")


@app.command(rich_help_panel=_PANEL)
def heal(
    target: Annotated[str, typer.Argument(help="Target name.")],
    action: Annotated[str, typer.Option("--action", "-a", help=f"One of: {', '.join(_ACTIONS)}.")] = "restart",
    wait: WaitOpt = 15.0,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    store: StoreOpt = None,
    api: ApiOpt = None,
    token_file: TokenFileOpt = None,
) -> None:
    """Any catalog action on a target, through the executor and safety gate (default: restart)."""
    if action not in _ACTIONS:
        from novacron.errors import InputError

        raise InputError(f"unknown action {action!r} (one of {', '.join(_ACTIONS)})", where="--action")
    _act(_api(config, store, api, token_file), target, action, wait, as_json)


@app.command(rich_help_panel=_PANEL)
def ack(
    incident: Annotated[str, typer.Argument(help="Incident id (inc-…).")],
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    store: StoreOpt = None,
    api: ApiOpt = None,
    token_file: TokenFileOpt = None,
) -> None:
    """Acknowledge an incident: a human owns it now (on its timeline, audited)."""
    res = _api(config, store, api, token_file).call("POST", f"/incidents/{incident}/ack")
    _done(res, as_json)


@app.command(rich_help_panel=_PANEL)
def unquarantine(
    target: Annotated[str, typer.Argument(help="Target name.")],
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    store: StoreOpt = None,
    api: ApiOpt = None,
    token_file: TokenFileOpt = None,
) -> None:
    """Lift a target's flap quarantine so automated healing acts on it again."""
    res = _api(config, store, api, token_file).call("POST", f"/targets/{target}/unquarantine")
    _done(res, as_json)


@app.command(rich_help_panel=_PANEL)
def disable(
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    store: StoreOpt = None,
    api: ApiOpt = None,
    token_file: TokenFileOpt = None,
) -> None:
    """The kill switch: stop all automated healing (manual commands still work). Needs an admin token."""
    res = _api(config, store, api, token_file).call("POST", "/autonomous/disable")
    _done({"ok": True, "detail": f"autonomous healing disabled by {res['by']}", **res}, as_json)


@app.command(rich_help_panel=_PANEL)
def enable(
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    store: StoreOpt = None,
    api: ApiOpt = None,
    token_file: TokenFileOpt = None,
) -> None:
    """Turn automated healing back on. Needs an admin token."""
    res = _api(config, store, api, token_file).call("POST", "/autonomous/enable")
    _done({"ok": True, "detail": f"autonomous healing enabled by {res['by']}", **res}, as_json)


def _done(res: dict[str, Any], as_json: bool) -> None:
    if as_json:
        emit_json(res)
    else:
        console().print(str(res.get("detail", "ok")), highlight=False)
