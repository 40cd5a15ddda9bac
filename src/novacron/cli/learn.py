"""``novacron twin build``, ``novacron learn``, ``novacron feedback`` and ``novacron bench learning``.

``twin build`` writes the twin of a real fleet spec, timed from that fleet's store;
``learn`` trains a remediation policy on a spec's twin and stores it as a promoted
version; ``feedback`` marks an action good or bad through the running controller's API;
``bench learning`` measures the learned policy against the ladder on the twin.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from novacron.cli._app import app, bench_app
from novacron.cli._client import ApiOpt, ConfigOpt, StoreOpt, TokenFileOpt, controller_api, no_store, open_store
from novacron.cli._output import JsonOpt, console, emit_json, write_file
from novacron.cli.twin import twin_app
from novacron.errors import InputError, NotFoundError
from novacron.model import ActionKind

__all__: list[str] = []

SpecArg = Annotated[Path, typer.Option("--spec", "--config", "-c", help="Fleet spec (YAML).", dir_okay=False)]


@twin_app.command("build")
def build(
    spec: SpecArg,
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the twin's spec (YAML).", dir_okay=False)],
    store: StoreOpt = None,
    twin_store: Annotated[
        str, typer.Option("--twin-store", help="The twin controller's own store.")
    ] = "sqlite:///.novacron/twin.db",
    seed: Annotated[int, typer.Option("--seed", help="The twin's random seed.")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Write the twin of SPEC's fleet: its targets as sim targets, repair timings measured from its store."""
    from novacron.runtime.twinspec import measure_timings, twin_of
    from novacron.settings import load_spec, spec_to_yaml

    real = load_spec(spec)
    db = open_store(store, spec)
    try:
        timings = measure_timings(db)
    finally:
        db.close()
    twin = twin_of(real, timings, store_url=twin_store, seed=seed)
    write_file(out, spec_to_yaml(twin), flag="--out")
    summary = {
        "out": str(out),
        "targets": len(twin.targets),
        "restart_s": timings.restart_s,
        "stop_s": timings.stop_s,
        "replace_s": timings.replace_s,
        "decide_s": timings.decide_s,
        "samples": timings.samples,
    }
    if as_json:
        emit_json(summary)
    else:
        console().print(
            f"twin of {real.name} → {out}: {len(twin.targets)} sim targets, restart {timings.restart_s:g}s, "
            f"stop {timings.stop_s:g}s (from {sum(timings.samples.values())} repairs)",
            highlight=False,
        )


@app.command()
def learn(
    spec: SpecArg,
    episodes: Annotated[int, typer.Option("--episodes", "-n", help="Faults to learn from on the twin.")] = 500,
    store: StoreOpt = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the twin's fault sequence.")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Learn a remediation policy on SPEC's twin; store it (promoted) where the controller loads it."""
    import logging

    from novacron.runtime.training import train_on_twin
    from novacron.settings import load_spec
    from novacron.telemetry import configure_logging

    configure_logging(level=logging.ERROR)  # the twin's controller is chatty; the summary is the output
    if not 1 <= episodes <= 100_000:
        raise InputError(f"must be between 1 and 100000, got {episodes}", where="--episodes")
    fleet = load_spec(spec)
    try:
        result = train_on_twin(fleet, episodes=episodes, seed=seed, store_url=store or fleet.controller.store_url)
    except NotFoundError as exc:  # a real fleet's twin is timed from its store: none there yet
        raise no_store(exc) from exc
    if as_json:
        emit_json(result)
        return
    console().print(
        f"learned {result['policy']} v{result['version']} ({result['learner']}) from {result['faults']} faults: "
        f"healed {result['healed']}, MTTR p50 {result['mttr_s']['p50']}s",
        highlight=False,
    )


@app.command()
def feedback(
    action_id: Annotated[
        str, typer.Argument(help="The action to mark (act-…, as `novacron incidents show` lists them).")
    ],
    verdict: Annotated[str, typer.Argument(help="good or bad.")],
    note: Annotated[str, typer.Option("--note", help="Why (kept in the audit trail).")] = "",
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    store: StoreOpt = None,
    api: ApiOpt = None,
    token_file: TokenFileOpt = None,
) -> None:
    """Mark an action good or bad: it enters the learning policy's reward and the audit trail."""
    if verdict not in ("good", "bad"):
        raise InputError(f"must be good or bad, got {verdict!r}", where="VERDICT")
    ctl = controller_api(config, store, api, token_file)
    res: dict[str, Any] = ctl.call("POST", f"/actions/{action_id}/feedback", {"verdict": verdict, "note": note})
    if as_json:
        emit_json(res)
    else:
        learned = "the policy learned from it" if res["learned"] else "no policy chose it; kept for the record"
        console().print(f"{action_id}: marked {verdict} — {learned}", highlight=False)


@bench_app.command("learning")
def bench_learning(
    faults: Annotated[int, typer.Option("--faults", help="Faults the bandit learns from.")] = 2000,
    eval_faults: Annotated[int, typer.Option("--eval-faults", help="Faults in each evaluation run.")] = 600,
    dqn: Annotated[bool, typer.Option("--dqn/--no-dqn", help="Also train and evaluate the DQN (ml extra).")] = True,
    oracle: Annotated[
        bool, typer.Option("--oracle/--no-oracle", help="Also try each allowed first step per fault kind (reference).")
    ] = True,
    actions: Annotated[
        str, typer.Option("--actions", help="Comma-separated steps the learners choose among (e.g. add reallocate).")
    ] = "restart,replace,wait,config_rollback,reallocate",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (always JSON).")] = True,
) -> None:
    """The learned policy against the ladder on the twin: MTTR, success, regret, off-policy estimates."""
    import logging

    from novacron.benchmarks.learning import run_learning_bench
    from novacron.telemetry import configure_logging

    configure_logging(level=logging.ERROR)  # the twin's controllers are chatty; the JSON is the output
    if faults < 10 or eval_faults < 10:
        raise InputError("must be >= 10", where="--faults/--eval-faults")
    result = run_learning_bench(
        faults=faults, eval_faults=eval_faults, dqn=dqn, oracle=oracle, actions=_actions(actions)
    )
    print(json.dumps(result, indent=None if as_json else 2))


def _actions(text: str) -> list[ActionKind]:
    """``restart,replace,…`` as catalog actions a learner may take; InputError naming the bad one."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    valid = {k.value for k in ActionKind} - {ActionKind.ESCALATE.value}
    bad = [n for n in names if n not in valid]
    if bad or not names:
        raise InputError(
            f"unknown step {bad[0] if bad else text!r} (steps: {', '.join(sorted(valid))})", where="--actions"
        )
    return [ActionKind(n) for n in dict.fromkeys(names)]
