"""``novacron agents``: list the operational agents, run them once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from novacron.cli._app import app

agents_app = typer.Typer(help="Operational agents: list, run once.", no_args_is_help=True)
app.add_typer(agents_app, name="agents")


@agents_app.command("list")
def agents_list() -> None:
    """Agents registered (built-in and through the novacron.agents entry point)."""
    from novacron.agents.registry import default_registry

    reg = default_registry()
    for name in reg.names():
        agent = reg.create(name)
        typer.echo(f"{name}\tevery {agent.interval_s:g}s")


@agents_app.command("run")
def agents_run(
    config: Annotated[Path, typer.Option("--config", "-c", help="Fleet spec (YAML).", dir_okay=False)],
    name: Annotated[str | None, typer.Argument(help="One agent (default: every enabled agent).")] = None,
    samples: Annotated[int, typer.Option("--samples", min=1, max=10_000, help="Runs, to build up history.")] = 1,
    every: Annotated[float, typer.Option("--every", min=0.0, help="Seconds between runs.")] = 1.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the outputs as one JSON object.")] = False,
) -> None:
    """Run agents once against the fleet's store and processes; record, never apply.

    Acting (low-risk through the executor, the rest to approval) happens inside
    `novacron run` with `agents: {enabled: true}`; here every proposal is a dry run.
    """
    import asyncio
    import json

    from novacron.agents.coordinator import Coordinator
    from novacron.agents.registry import default_registry
    from novacron.agents.wiring import read_logs
    from novacron.cli._client import open_store
    from novacron.clock import MonotonicClock
    from novacron.errors import InputError
    from novacron.settings import load_spec

    spec = load_spec(config)
    registry = default_registry()
    if name is not None:
        registry.create(name)  # a clear error naming the agent if unknown
        if name in spec.agents.agents and not spec.agents.agents[name].enabled:  # it would run nothing, silently
            raise InputError(f"{name!r} is disabled in the spec (agents.agents.{name}.enabled: false)", where="NAME")
    # The agents read what a controller recorded: a store that does not exist is refused (exit 3), not created.
    store = open_store(None, config)
    workdir = Path(spec.controller.workdir)
    pids: dict[str, list[int]] = {}
    for rec in store.processes():
        pids.setdefault(rec.target, []).append(rec.pid)
    coord = Coordinator(
        spec,
        registry,
        store=store,
        clock=MonotonicClock(),
        pids=lambda t: pids.get(t, []),
        logs=lambda t: read_logs(workdir / "logs", t),
        workdir=str(workdir),
        only=[name] if name else None,
    )

    async def go() -> list[dict[str, object]]:
        outs = []
        for i in range(samples):
            outs = [o.to_json() for o in await coord.run_once()]
            if i + 1 < samples:
                await asyncio.sleep(every)
        return outs

    try:
        outputs = asyncio.run(go())
    finally:
        store.close()
    if as_json:
        typer.echo(json.dumps({"outputs": outputs}))
        return
    for o in outputs:
        typer.echo(f"{o['agent']}: {o['summary']}")
        for f in o["findings"]:  # type: ignore[attr-defined]
            typer.echo(f"  finding {f['target']} {f['kind']}: {f['summary']} (confidence {f['confidence']})")
        for p in o["proposals"]:  # type: ignore[attr-defined]
            typer.echo(f"  proposal {p['kind']} {p['target']} ({p['risk']} risk, {p['status']}): {p['reason']}")
