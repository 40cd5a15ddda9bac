"""Steering the running controller: restart, stop, start, heal, ack, unquarantine, disable, enable, reload.

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
from novacron.cli._client import EXIT_FAILED, ApiOpt, ConfigOpt, ControllerApi, StoreOpt, TokenFileOpt, controller_api
from novacron.cli._output import JsonOpt, console, emit_json
from novacron.cli.core import incidents_app
from novacron.errors import ConfigError
from novacron.model import MANUAL_ACTIONS, ActionKind

__all__: list[str] = []

WaitOpt = Annotated[
    float, typer.Option("--wait", min=0, max=120, help="Seconds to wait for the verified result (then it carries on).")
]
# Exit 0 only for what the executor calls success. A dry run's answer (decided, nothing
# touched) and an action still running after --wait are not a verified heal: a script that
# reads exit 0 as "healthy" must not be told so; the outcome is printed either way.
_GOOD = {"verified", "applied"}
_PENDING = {"dry_run", "running"}
_PANEL = "Steer the running controller"


def _act(
    ctl: ControllerApi, target: str, action: str, wait: float, as_json: bool, params: dict[str, Any] | None = None
) -> None:
    body: dict[str, Any] = {"target": target, "action": action, "wait_s": wait}
    if params:
        body["params"] = params
    res = ctl.call("POST", "/autonomous/heal", body, wait_s=wait)
    if as_json:
        emit_json(res)
    else:
        status = str(res["status"])
        colour = "green" if status in _GOOD else "yellow" if status in _PENDING else "red"
        note = _note(status, str(res["detail"]), wait)
        ident = f" ({res['action_id']})" if res.get("action_id") else ""
        console().print(f"{action} {target}: [{colour}]{status}[/] — {note}{ident}", highlight=False)
    if res["status"] not in _GOOD:
        raise typer.Exit(EXIT_FAILED)


def _note(status: str, detail: str, wait: float) -> str:
    """What the result means for the operator, beside the controller's own detail."""
    if status == "running":
        return f"still running after {wait:g}s; it carries on and is audited (not verified yet: exit 1)"
    if status == "dry_run":
        return f"{detail} (dry-run controller: decided and recorded, nothing touched: exit 1)"
    return detail


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
        _act(controller_api(config, store, api, token_file), target, action, wait, as_json)

    command.__doc__ = doc
    app.command(action, rich_help_panel=_PANEL)(command)


_target_command("restart", "Restart a target's replicas through the executor; exit 1 unless verified healthy.")
_target_command(
    "stop", "Stop a target's replicas (SIGTERM, then SIGKILL after its stop timeout); exit 1 unless it is done."
)
_target_command("start", "Start a target's missing replicas; exit 1 unless verified healthy.")


@app.command(rich_help_panel=_PANEL)
def heal(
    target: Annotated[str, typer.Argument(help="Target name.")],
    action: Annotated[str, typer.Option("--action", "-a", help=f"One of: {', '.join(MANUAL_ACTIONS)}.")] = "restart",
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            "-p",
            help="An action parameter KEY=VALUE, repeatable (e.g. to=b for vm_migrate, replica=0); "
            "a JSON object or list for a mapping (weights='{\"r0\": 0}' for reroute).",
        ),
    ] = None,
    wait: WaitOpt = 15.0,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    store: StoreOpt = None,
    api: ApiOpt = None,
    token_file: TokenFileOpt = None,
) -> None:
    """Any catalog action on a target through the executor and safety gate (default restart); exit 1 unless verified."""
    if action not in MANUAL_ACTIONS:
        from novacron.errors import InputError

        allowed = ", ".join(MANUAL_ACTIONS)
        if action in {k.value for k in ActionKind}:  # in the catalog, but not for a human to request
            raise InputError(
                f"{action!r} is taken only by automation (a human requests one of {allowed})", where="--action"
            )
        raise InputError(f"unknown action {action!r} (one of {allowed})", where="--action")
    params = _params(param or [])
    _act(controller_api(config, store, api, token_file), target, action, wait, as_json, params)


def _params(items: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs; a value that reads as an integer, a number or true/false is one.

    A value starting with ``{`` or ``[`` is JSON: reroute's weights are a mapping.
    """
    import json

    from novacron.errors import InputError

    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"{item!r} is not KEY=VALUE", where="--param")
        text = text.strip()
        if text.startswith(("{", "[")):
            try:
                out[key.strip()] = json.loads(text)
            except ValueError as exc:
                raise InputError(f"{key.strip()}: {text!r} is not JSON ({exc})", where="--param") from None
        else:
            out[key.strip()] = _scalar(text)
    return out


def _scalar(text: str) -> Any:
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _named_command(name: str, noun: str, path: str, doc: str, *, under: typer.Typer = app) -> None:
    """Register ``novacron NAME ID``: one POST to ``path`` (``{}`` is the id), its detail printed."""

    def command(
        ident: str,
        as_json: JsonOpt = False,
        config: ConfigOpt = None,
        store: StoreOpt = None,
        api: ApiOpt = None,
        token_file: TokenFileOpt = None,
    ) -> None:
        _done(controller_api(config, store, api, token_file).call("POST", path.format(ident)), as_json)

    # Set as an object, not a string: the help text is this command's, known only here.
    command.__annotations__["ident"] = Annotated[str, typer.Argument(metavar=noun.upper(), help=f"The {noun}.")]
    command.__doc__ = doc
    under.command(name, rich_help_panel=_PANEL if under is app else None)(command)


def _switch_command(name: str, enabled: bool, doc: str) -> None:
    """Register ``novacron disable`` / ``enable``: the kill switch (admin)."""

    def command(
        as_json: JsonOpt = False,
        config: ConfigOpt = None,
        store: StoreOpt = None,
        api: ApiOpt = None,
        token_file: TokenFileOpt = None,
    ) -> None:
        res = controller_api(config, store, api, token_file).call("POST", f"/autonomous/{name}")
        state = "enabled" if enabled else "disabled"
        _done({"ok": True, "detail": f"autonomous healing {state} by {res['by']}", **res}, as_json)

    command.__doc__ = doc
    app.command(name, rich_help_panel=_PANEL)(command)


_named_command(
    "ack",
    "incident",
    "/incidents/{}/ack",
    "Acknowledge an incident: a human owns it now (on its timeline, audited).",
)
_named_command(
    "ack",
    "incident",
    "/incidents/{}/ack",
    "Acknowledge an incident: paging stops and a human owns it (on its timeline, audited).",
    under=incidents_app,
)
_named_command(
    "unquarantine",
    "target",
    "/targets/{}/unquarantine",
    "Lift a target's flap quarantine so automated healing acts on it again.",
)
_switch_command(
    "disable", False, "The kill switch: stop all automated healing (manual commands still work). Needs an admin token."
)
_switch_command("enable", True, "Turn automated healing back on. Needs an admin token.")


_RELOAD_WAIT_S = 300.0  # restarts are verified before the answer: each may take its start timeout


@app.command(rich_help_panel=_PANEL)
def reload(
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    store: StoreOpt = None,
    api: ApiOpt = None,
    token_file: TokenFileOpt = None,
) -> None:
    """Apply the running controller's changed spec file in place, as SIGHUP does. Needs an admin token.

    A spec that does not load, or changes a field that cannot change in place, exits 2 naming it
    and nothing is applied; exit 1 when a started or restarted target was not verified healthy.
    """
    res = _controller_of(config, store, api, token_file).call("POST", "/reload", wait_s=_RELOAD_WAIT_S)
    if as_json:
        emit_json(res)
    else:
        console().print(_reload_line(res), highlight=False)
    if res["failed"]:
        raise typer.Exit(EXIT_FAILED)


def _controller_of(config: Path | None, store: str | None, api: str | None, token_file: Path | None) -> ControllerApi:
    """The controller, found through the spec's store even when the edited spec is not valid.

    The controller is the one to judge it (it logs and audits the refusal); only a file
    that is not even YAML leaves no store to find it by.
    """
    try:
        return controller_api(config, store, api, token_file)
    except ConfigError:
        url = _store_url_as_written(config) if config is not None and store is None and api is None else None
        if url is None:
            raise
        return controller_api(None, url, None, token_file)


def _store_url_as_written(config: Path) -> str | None:
    import yaml

    from novacron.settings import ControllerSettings  # not at import: every command would load pydantic

    try:
        data = yaml.safe_load(config.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    ctl = data.get("controller") if isinstance(data, dict) else None
    url = ctl.get("store_url") if isinstance(ctl, dict) else None
    return url if isinstance(url, str) else ControllerSettings().store_url if ctl is None else None


def _reload_line(res: dict[str, Any]) -> str:
    parts = [f"{word} {', '.join(res[key])}" for key, word in _RELOAD_WORDS if res[key]]
    if res["policy_changed"]:
        parts.append("policy changed")
    parts.append(f"{len(res['unchanged'])} unchanged")
    failed = "".join(f"\n{name} not verified: {why}" for name, why in res["failed"].items())
    return f"spec version {res['version']} in force (reloaded by {res['by']}): {'; '.join(parts)}{failed}"


_RELOAD_WORDS = (
    ("added", "added"),
    ("removed", "removed"),
    ("changed", "restarted"),
    ("rechecked", "checks re-armed without a restart"),
)


def _done(res: dict[str, Any], as_json: bool) -> None:
    if as_json:
        emit_json(res)
    else:
        console().print(str(res.get("detail", "ok")), highlight=False)
