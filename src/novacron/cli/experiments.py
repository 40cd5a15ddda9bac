"""``novacron experiment start|status|stop|list`` and ``novacron bench experiments``.

The experiment commands go through the running controller's API (its runner, executor and
safety gate), found like every steering command (``-c fleet.yaml``, ``--store`` or ``--api``).
"""

from __future__ import annotations

import json
import shlex
from typing import Annotated, Any

import typer

from novacron.cli._app import app, bench_app
from novacron.cli._client import ApiOpt, ConfigOpt, StoreOpt, TokenFileOpt, controller_api
from novacron.cli._output import JsonOpt, console, emit_json
from novacron.errors import InputError


@bench_app.command("experiments")
def bench_experiments(
    experiments: Annotated[int, typer.Option("--experiments", min=100, help="Simulated A/A experiments.")] = 2000,
    looks: Annotated[int, typer.Option("--looks", min=10, help="Looks per simulated experiment.")] = 100,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the simulated traffic.")] = 0,
    e2e: Annotated[
        bool, typer.Option("--e2e/--no-e2e", help="Also run canaries and a circuit on real HAProxy and services.")
    ] = True,
    budget: Annotated[int, typer.Option("--budget", min=1000, help="Most requests per real-traffic canary.")] = 20_000,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (the default output).")] = True,
) -> None:
    """A/A false positives under peeking, power, samples to decision; canaries and a circuit on real traffic."""
    from novacron.benchmarks.experiments_stats import run_stats_bench

    result = run_stats_bench(experiments=experiments, looks=looks, seed=seed)
    if e2e:
        from novacron.benchmarks.experiments_e2e import run_e2e_bench

        result.update(run_e2e_bench(budget=budget))
    typer.echo(json.dumps(result, indent=None if as_json else 2))


experiment_app = typer.Typer(help="Canaries behind a frontend: start, status, stop, list.", no_args_is_help=True)
app.add_typer(experiment_app, name="experiment")


def _variant(text: str) -> tuple[str, list[str]]:
    """``ARM=COMMAND`` → (arm, argv)."""
    arm, sep, command = text.partition("=")
    try:
        argv = shlex.split(command)
    except ValueError as exc:  # an unclosed quote: the shell's words cannot be told apart
        raise InputError(f"{command!r} is not a command line: {exc}", where="--variant") from None
    if not sep or not arm.strip() or not argv:
        raise InputError("expected ARM=COMMAND, e.g. b='python -m app --port {port}'", where="--variant")
    return arm.strip().lower(), argv


def _show(row: dict[str, Any]) -> None:
    arms = ", ".join(
        f"{arm}: {a['requests']} req, {a['errors']} err" for arm, a in sorted(dict(row.get("arms", {})).items())
    )
    console().print(
        f"{row['name']} on {row['target']}: [bold]{row['phase']}[/] at {row['split']:g} % ({arms})"
        + (f" — {row['reason']}" if row.get("reason") else ""),
        highlight=False,
    )


@experiment_app.command("start")
def experiment_start(
    target: Annotated[str, typer.Option("--target", "-t", help="A target with a frontend.")],
    variant: Annotated[str, typer.Option("--variant", help="ARM=COMMAND; '{port}' is filled with a free port.")],
    split: Annotated[float, typer.Option("--split", min=0.01, max=99.99, help="First step, percent of traffic.")] = 1.0,
    name: Annotated[str | None, typer.Option("--name", help="Experiment name (default TARGET-ARM).")] = None,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    store: StoreOpt = None,
    api: ApiOpt = None,
    token_file: TokenFileOpt = None,
) -> None:
    """Start a canary of ARM beside TARGET's replicas; exit 2 when anything is wrong (nothing changed)."""
    arm, argv = _variant(variant)
    body = {"name": name or f"{target}-{arm}", "target": target, "arm": arm, "command": argv, "split": split}
    row = controller_api(config, store, api, token_file).call("POST", "/experiments", body, wait_s=30.0)
    emit_json(row) if as_json else _show(row)


@experiment_app.command("status")
def experiment_status(
    name: Annotated[str, typer.Argument(help="Experiment name.")],
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    store: StoreOpt = None,
    api: ApiOpt = None,
    token_file: TokenFileOpt = None,
) -> None:
    """One experiment: phase, split, each arm's counts, the last look's tests."""
    row = controller_api(config, store, api, token_file).call("GET", f"/experiments/{name}?looks=1")
    emit_json(row) if as_json else _show(row)


@experiment_app.command("stop")
def experiment_stop(
    name: Annotated[str, typer.Argument(help="Experiment name.")],
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    store: StoreOpt = None,
    api: ApiOpt = None,
    token_file: TokenFileOpt = None,
) -> None:
    """Stop an experiment: all traffic back to the baseline, the variant stopped."""
    row = controller_api(config, store, api, token_file).call("POST", f"/experiments/{name}/stop", wait_s=30.0)
    emit_json(row) if as_json else _show(row)


@experiment_app.command("list")
def experiment_list(
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    store: StoreOpt = None,
    api: ApiOpt = None,
    token_file: TokenFileOpt = None,
) -> None:
    """Every experiment, newest first."""
    rows = controller_api(config, store, api, token_file).call("GET", "/experiments")
    if as_json:
        emit_json(rows)
        return
    for row in rows:
        _show(row)
