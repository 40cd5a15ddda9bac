"""``novacron tune`` and ``novacron evolve``: search the spec's tuning space and fleet layouts on the twin."""

from __future__ import annotations

import getpass
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from novacron.cli._app import app
from novacron.cli._client import StoreOpt
from novacron.cli._output import JsonOpt, check_output, console, emit_json, err_console, writing

if TYPE_CHECKING:
    from novacron.runtime.tunebackend import Backend
    from novacron.settings import FleetSpec
    from novacron.store.studies import StudyStore
    from novacron.tuningspec import AbSpec

__all__: list[str] = []

SpecOpt = Annotated[Path, typer.Option("--spec", "--config", "-c", help="The fleet spec with a tuning: block.")]
WorkersOpt = Annotated[int, typer.Option("--workers", min=1, help="Local worker processes evaluating candidates.")]
DaskOpt = Annotated[
    str | None, typer.Option("--dask", help="A Dask scheduler address (tcp://host:port) to evaluate on instead.")
]
StudyOpt = Annotated[
    str | None, typer.Option("--study", help="Study name; an existing one with the same setup resumes.")
]
SeedOpt = Annotated[int, typer.Option("--seed", help="The optimiser's seed.")]


def _store(spec: FleetSpec, store: str | None) -> StudyStore:
    from novacron.store import Store
    from novacron.store.studies import StudyStore

    return StudyStore(Store.open(store or spec.controller.store_url))


def _backend(workers: int, dask: str | None) -> Backend:
    from novacron.runtime.tunebackend import make_backend

    return make_backend(workers=workers, dask=dask)


@app.command("tune")
def tune(
    spec_path: SpecOpt,
    budget: Annotated[
        int | None, typer.Option("--budget", min=1, help="Candidates to evaluate (default: the spec's).")
    ] = None,
    method: Annotated[str | None, typer.Option("--method", help="gp, tpe or random (default: the spec's).")] = None,
    study: StudyOpt = None,
    store: StoreOpt = None,
    workers: WorkersOpt = 2,
    dask: DaskOpt = None,
    seed: SeedOpt = 0,
    promote: Annotated[bool, typer.Option("--promote", help="Promote the winner through the executor.")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="With --promote: decide and record, change nothing.")
    ] = False,
    approve: Annotated[bool, typer.Option("--approve", help="With --promote: your yes when the policy asks.")] = False,
    ab: Annotated[
        bool | None,
        typer.Option(
            "--ab/--no-ab",
            help="With --promote: run the winner as a canary on the running fleet first (default: if tuning.ab set).",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Tune the spec's parameters on the twin (GP + EI by default); optionally promote the winner."""
    from novacron.runtime.tuneproblem import build_problem
    from novacron.runtime.tunestudy import run_tune
    from novacron.settings import load_spec

    spec = load_spec(spec_path)
    problem = build_problem(spec)
    if method is not None:
        problem = build_problem(spec, tuning=problem.tuning.model_copy(update={"method": method}))
        _check_method(method)
    name = study or f"{spec.name}-tune-{problem.tuning.method}"
    studies = _store(spec, store)
    backend = _backend(workers, dask)
    try:
        with _progress(as_json, "tune") as bar:
            task = bar.add_task("tune", total=budget or problem.tuning.budget, best="—")

            def progress(done: int, total: int, best: float | None) -> None:
                bar.update(task, completed=done, total=total, best="—" if best is None else f"{best:.4g}")

            result = run_tune(
                problem, backend, study=name, budget=budget, store=studies, seed=seed, on_progress=progress
            )
    finally:
        backend.close()
        studies.store.close()
    result["study"] = name
    if promote:
        canary = _ab_settings(spec, ab)
        if canary is not None and not dry_run:  # a dry run changes nothing, traffic included
            result["ab"] = _canaries(spec, spec_path, result, name, canary, store=store)
        if all(c["phase"] == "promoted" for c in result.get("ab", [])):
            result["promotion"] = _promote(spec, spec_path, result, name, dry_run=dry_run, approve=approve, store=store)
        else:
            result["promotion"] = []
    if as_json:
        emit_json(result)
        return
    _print_tune(result)


def _check_method(method: str) -> None:
    from novacron.errors import InputError
    from novacron.tuning import METHODS

    if method not in METHODS:
        raise InputError(f"unknown method {method!r} (one of {', '.join(METHODS)})", where="--method")


def _ab_settings(spec: FleetSpec, ab: bool | None) -> AbSpec | None:
    """The canary settings when the winner goes through an A/B first (the flag wins over the spec)."""
    from novacron.tuningspec import AbSpec

    block = spec.tuning.ab if spec.tuning is not None else None
    if ab is None:
        return block
    return (block or AbSpec()) if ab else None


def _canaries(
    spec: FleetSpec, spec_path: Path, result: dict[str, Any], study: str, ab: AbSpec, *, store: str | None
) -> list[dict[str, Any]]:
    from novacron.cli._client import ControllerApi
    from novacron.cli._tune_ab import run_canaries
    from novacron.errors import NovacronError
    from novacron.runtime.tuneproblem import apply_values

    best = result.get("best")
    if not best or not best.get("fresh_feasible", False):
        raise NovacronError("no candidate met the constraints on fresh seeds: nothing to promote")
    found: list[ControllerApi] = []

    def call(*args: Any, **kwargs: Any) -> Any:
        if not found:  # located on first use: a target without a frontend is refused before that
            found.append(ControllerApi.locate(config=spec_path, store=store, api=None, token_file=None))
        return found[0].call(*args, **kwargs)

    return run_canaries(spec, apply_values(spec, dict(best["promotable"])), ab, study=study, call=call)


def _promote(
    spec: FleetSpec,
    spec_path: Path,
    result: dict[str, Any],
    study: str,
    *,
    dry_run: bool,
    approve: bool,
    store: str | None,
) -> list[dict[str, Any]]:
    from novacron.errors import NovacronError
    from novacron.runtime.tunepromote import promote

    best = result.get("best")
    if not best or not best.get("fresh_feasible", False):
        raise NovacronError("no candidate met the constraints on fresh seeds: nothing to promote")
    outcome = promote(
        spec,
        dict(best["promotable"]),
        store_url=store or spec.controller.store_url,
        spec_path=spec_path,
        study=study,
        dry_run=dry_run,
        approve=approve,
        who=f"cli:{getpass.getuser()}",
    )
    return [r.as_dict() for r in outcome]


def _progress(quiet: bool, label: str) -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (
        TextColumn(f"[bold]{label}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("best {task.fields[best]}"),
        TimeElapsedColumn(),
    )
    return Progress(*columns, console=err_console(), disable=quiet)


def _print_tune(result: dict[str, Any]) -> None:
    from rich.table import Table

    out = console()
    out.print(
        f"[bold]{result['study']}[/]: {result['trials']} trials ({result['method']}), {result['failed']} failed, "
        f"{result['infeasible']} infeasible" + (" · resumed" if result["resumed"] else "")
    )
    best = result.get("best")
    if not best:
        out.print("[red]no feasible candidate[/]")
        return
    table = Table(title=f"winner: trial {best['trial']}")
    table.add_column("parameter")
    table.add_column("value", justify="right")
    for path, value in best["params"].items():
        table.add_row(path, f"{value:.4g}" if isinstance(value, float) else str(value))
    out.print(table)
    metrics = Table(title="on the tuning seeds and on fresh seeds")
    for col in ("metric", "tuning", "fresh"):
        metrics.add_column(col, justify="right" if col != "metric" else "left")
    metrics.add_row("score", f"{best['value']:.4g}", f"{best['fresh_value']:.4g}")
    for key, value in best["metrics"].items():
        metrics.add_row(key, f"{value:.4g}", f"{best['fresh_metrics'][key]:.4g}")
    out.print(metrics)
    for canary in result.get("ab", []):
        out.print(f"canary {canary['experiment']} on {canary['target']}: {canary['phase']} ({canary['reason']})")
    for promo in result.get("promotion", []):
        out.print(f"promotion of {promo['target']}: {promo['status']} ({promo['detail']}) action {promo['action_id']}")


@app.command("evolve")
def evolve(
    spec_path: SpecOpt,
    generations: Annotated[int | None, typer.Option("--generations", min=1, help="Default: the spec's.")] = None,
    population: Annotated[int | None, typer.Option("--population", min=4, help="Default: the spec's.")] = None,
    study: StudyOpt = None,
    store: StoreOpt = None,
    workers: WorkersOpt = 2,
    dask: DaskOpt = None,
    seed: SeedOpt = 0,
    plot: Annotated[Path | None, typer.Option("--plot", help="Write the Pareto front as a PNG here.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Search fleet layouts on the twin with NSGA-II; print the Pareto front of cost, unavailability and MTTR."""
    from novacron.errors import InputError
    from novacron.runtime.tunestudy import run_evolve
    from novacron.settings import load_spec

    spec = load_spec(spec_path)
    if spec.tuning is None:
        raise InputError("the spec has no tuning: block", where="tuning")
    if plot is not None:  # before the search, not after it
        check_output(plot, flag="--plot")
    name = study or f"{spec.name}-evolve-{time.strftime('%Y%m%d-%H%M%S')}"
    studies = _store(spec, store)
    backend = _backend(workers, dask)
    try:
        with _progress(as_json, "evolve") as bar:
            task = bar.add_task("evolve", total=generations or spec.tuning.evolve.generations, best="—")

            def progress(gen: int, total: int, size: int, hv: float) -> None:
                bar.update(task, completed=gen, total=total, best=f"front {size}, hv {hv:.4f}")

            result = run_evolve(
                spec.tuning,
                backend,
                study=name,
                generations=generations,
                population=population,
                store=studies,
                seed=seed,
                on_progress=progress,
            )
    finally:
        backend.close()
        studies.store.close()
    result["study"] = name
    if plot is not None:
        from novacron.cli._tune_plot import plot_front

        with writing(plot, flag="--plot"):
            plot_front(result, plot)
        result["plot"] = str(plot)
    if as_json:
        emit_json(result)
        return
    _print_front(result)


def _print_front(result: dict[str, Any]) -> None:
    from rich.table import Table

    out = console()
    table = Table(
        title=f"{result['study']}: Pareto front after {result['generations']} generations ({result['method']})"
    )
    for col in ("zones", "hosts/zone", "replicas", "spread", "spare", "links", "cost/h", "unavail.", "MTTR p95 s"):
        table.add_column(col, justify="right")
    for p in result["front"]:
        lay = p["layout"]
        table.add_row(
            *(str(lay[k]) for k in ("zones", "hosts_per_zone", "replicas", "spread", "spare", "connections")),
            f"{p['cost_per_hour']:.2f}",
            f"{p['unavailability']:.4f}",
            f"{p['mttr_p95_s']:.1f}",
        )
    out.print(table)
    out.print(f"hypervolume by generation: {result['hv_by_gen']}")
    if result["pick"] is not None:
        out.print(f"picked with weights {result['weights']}: {result['pick']['layout']}")


@app.command("tune-rollback")
def tune_rollback(
    spec_path: SpecOpt,
    action_id: Annotated[str, typer.Option("--action", help="The config_change action a promotion recorded.")],
    store: StoreOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Decide and record, change nothing.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Undo a promotion: its inverse (the previous target spec) through the executor."""
    from novacron.runtime.tunepromote import rollback_promotion
    from novacron.settings import load_spec

    spec = load_spec(spec_path)
    result = rollback_promotion(
        action_id,
        store_url=store or spec.controller.store_url,
        spec_path=spec_path,
        dry_run=dry_run,
        who=f"cli:{getpass.getuser()}",
    ).as_dict()
    if as_json:
        emit_json(result)
        return
    console().print(
        f"rollback of {result['target']}: {result['status']} ({result['detail']}) action {result['action_id']}"
    )
