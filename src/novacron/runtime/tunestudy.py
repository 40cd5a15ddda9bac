"""Running a tuning study or a layout search: ask, evaluate on the twin, tell, store.

:func:`run_tune` drives an ask/tell optimiser over the spec's ``tuning:`` space. Each
candidate is run on every scenario seed (common random numbers: the same troubles for
every candidate), the seeds' runs go to the backend in parallel, and every trial is in the
store before and after it is evaluated — a study killed mid-way resumes from the store
with the same name, re-evaluating what was running, and several processes running the
same study against one database share it (:mod:`novacron.runtime.tuneshare`). Before a winner is declared, the best
few candidates are re-run on fresh seeds and the one that does best there wins, so a
lucky draw on the tuning seeds cannot crown a configuration; the winner's fresh-seed value
is reported beside its tuning value.

:func:`run_evolve` runs NSGA-II over fleet layouts for a number of generations, storing
every genome, and returns the Pareto front (cost, unavailability, MTTR p95) with the
hypervolume per generation and the point the weights pick.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from novacron.errors import InputError
from novacron.evolution import (
    LAYOUT_OBJECTIVES,
    Layout,
    ParetoSearch,
    gene_bounds,
    hypervolume,
    layout_objectives,
    layout_operators,
    pick_weighted,
    run_layout,
)
from novacron.runtime.tunebackend import Backend, Failed
from novacron.runtime.tuneproblem import TuneProblem, scenario_of
from novacron.runtime.tuneshare import SharedStudy
from novacron.store.studies import StudyStore, TrialRow
from novacron.tuning import AskTell, Trial, TrialState, make_optimizer
from novacron.tuning.twin import RunResult, TwinScenario, combine, run_healer
from novacron.tuningspec import TuningSpec

__all__ = ["EvolveProgress", "TuneProgress", "evaluate_configs", "run_evolve", "run_tune"]

TuneProgress = Callable[[int, int, float | None], None]  # (finished, budget, best so far)
EvolveProgress = Callable[[int, int, int, float], None]  # (generation, generations, front size, hypervolume)

_MAX_HOST_CORES = 32.0  # the largest host a layout can ask for (spare capacity 4)


def evaluate_configs(
    problem: TuneProblem, configs: Sequence[Mapping[str, Any]], seeds: Sequence[int], backend: Backend
) -> list[dict[str, float] | str]:
    """Metrics of each configuration pooled over ``seeds``, or the error text of a failed run."""
    scenario = problem.scenario.with_seeds(seeds)
    items = [(problem.knob_values(c), scenario, s) for c in configs for s in seeds]
    return _pooled(backend.map(run_healer, items), len(seeds), combine)


def _pooled(
    results: Sequence[Any], per: int, pool: Callable[[Sequence[RunResult]], dict[str, float]]
) -> list[dict[str, float] | str]:
    """Group a candidate's ``per`` seeded runs and pool them, or keep the first error of a failed one."""
    out: list[dict[str, float] | str] = []
    for i in range(0, len(results), per):
        runs = results[i : i + per]
        failed = [r.error for r in runs if isinstance(r, Failed)]
        out.append(failed[0] if failed else pool(runs))
    return out


def _settle(opt: AskTell, problem: TuneProblem, trial: Trial, outcome: dict[str, float] | str) -> None:
    if isinstance(outcome, str):
        opt.fail(trial.number, outcome)
        return
    score = problem.objective.score(outcome)
    detail = "violates " + ", ".join(score.violated) if score.violated else ""
    opt.tell(trial.number, score.value, feasible=score.feasible, metrics=outcome, detail=detail)


def run_tune(
    problem: TuneProblem,
    backend: Backend,
    *,
    study: str,
    budget: int | None = None,
    store: StudyStore | None = None,
    seed: int = 0,
    on_progress: TuneProgress | None = None,
    now: Callable[[], float] = time.time,
    worker: str = "",
) -> dict[str, Any]:
    """Tune until ``budget`` trials are finished (the spec's budget by default); returns the study result.

    With a store the study is shared: other processes running the same study against the
    same database claim trials from the same history (:mod:`novacron.runtime.tuneshare`).
    """
    block = problem.tuning
    budget = budget if budget is not None else block.budget
    if budget < 1:
        raise InputError(f"must be >= 1, got {budget}", where="--budget")
    batch = max(1, backend.workers // len(block.seeds))

    last: list[AskTell] = []

    def fresh() -> AskTell:
        opt = make_optimizer(block.method, problem.space, seed=seed)
        if last:
            opt.inherit(last[0])
        last[:] = [opt]
        return opt

    def evaluate(opt: AskTell, todo: Sequence[Trial]) -> None:
        outcomes = evaluate_configs(problem, [t.params for t in todo], block.seeds, backend)
        for trial, outcome in zip(todo, outcomes, strict=True):
            _settle(opt, problem, trial, outcome)

    if store is None:
        opt, resumed = _run_here(fresh(), evaluate, budget=budget, batch=batch, on_progress=on_progress), False
        evaluated = opt.finished
    else:
        _, resumed = store.open_study(study, "tune", {**problem.describe(), "seed": seed}, now=now())
        shared = SharedStudy(store, study, worker=worker, now=now)
        opt = shared.run(fresh, evaluate, budget=budget, batch=batch, on_progress=on_progress)
        evaluated = shared.evaluated
    result = _conclude(problem, opt, backend, resumed)
    result["evaluated_here"] = evaluated
    if store is not None:
        store.finish(study, "done" if result["best"] else "failed", result, now=now())
    return result


def _run_here(
    opt: AskTell,
    evaluate: Callable[[AskTell, Sequence[Trial]], None],
    *,
    budget: int,
    batch: int,
    on_progress: TuneProgress | None,
) -> AskTell:
    """A study kept in this process only."""
    while opt.finished < budget:
        todo = [opt.ask() for _ in range(min(batch, budget - len(opt.trials)))]
        if not todo:
            break
        evaluate(opt, todo)
        if on_progress is not None:
            best = opt.best()
            on_progress(opt.finished, budget, best.value if best else None)
    return opt


def _conclude(problem: TuneProblem, opt: AskTell, backend: Backend, resumed: bool) -> dict[str, Any]:
    """Re-run the best few on fresh seeds; the best there wins."""
    block = problem.tuning
    top = opt.ranked()[: block.recheck]
    summary: dict[str, Any] = {
        "method": block.method,
        "trials": opt.finished,
        "failed": sum(t.state is TrialState.FAILED for t in opt.trials),
        "infeasible": sum(t.state is TrialState.COMPLETE and not t.feasible for t in opt.trials),
        "resumed": resumed,
        "best": None,
    }
    if not top:
        return summary
    fresh = evaluate_configs(problem, [t.params for t in top], block.validation_seeds, backend)
    rechecked = []
    for trial, outcome in zip(top, fresh, strict=True):
        if isinstance(outcome, str):
            continue
        score = problem.objective.score(outcome)
        rechecked.append((score.value if score.feasible else float("inf"), trial, outcome, score))
    if not rechecked:
        return summary
    _, trial, metrics, score = min(rechecked, key=lambda r: (r[0], r[1].number))
    assert trial.value is not None
    summary["best"] = {
        "trial": trial.number,
        "params": trial.params,
        "value": trial.value,
        "metrics": trial.metrics,
        "fresh_value": score.value,
        "fresh_metrics": metrics,
        "fresh_feasible": score.feasible,
        "fresh_gap": abs(score.value - trial.value) / max(abs(trial.value), 1e-9),
        "promotable": {p: trial.params[p] for p in problem.spec_paths()},
    }
    summary["rechecked"] = [r[1].number for r in rechecked]
    return summary


def layout_reference(scenario: TwinScenario) -> np.ndarray:
    """Scale of each layout objective: the dearest fleet, total unavailability, the whole run."""
    _, hi = gene_bounds()
    dearest = float(hi[0] * hi[1]) * _MAX_HOST_CORES * scenario.core_price_per_hour
    return np.array([max(dearest, 1e-9), 1.0, scenario.horizon_s])


def run_evolve(
    block: TuningSpec,
    backend: Backend,
    *,
    study: str,
    generations: int | None = None,
    population: int | None = None,
    store: StudyStore | None = None,
    seed: int = 0,
    on_progress: EvolveProgress | None = None,
    now: Callable[[], float] = time.time,
) -> dict[str, Any]:
    """Search fleet layouts for ``generations``; returns the front, hypervolume per generation and the pick."""
    evo = block.evolve
    gens = generations if generations is not None else evo.generations
    pop = population if population is not None else evo.population
    if gens < 1:
        raise InputError(f"must be >= 1, got {gens}", where="--generations")
    scenario = scenario_of(block)
    if store is not None:
        config = {"tuning": block.model_dump(mode="json"), "generations": gens, "population": pop, "seed": seed}
        _, resumed = store.open_study(study, "evolve", config, now=now())
        if resumed:
            raise InputError(
                f"study {study!r} already exists; a layout search starts under a new name", where="--study"
            )
    lo, hi = gene_bounds()
    search = ParetoSearch(xl=lo, xu=hi, n_obj=3, pop_size=pop, seed=seed, integer=True, operators=layout_operators())
    scale = layout_reference(scenario)
    hv_by_gen: list[float] = []
    number = 0
    for gen in range(gens):
        genomes = search.ask()
        layouts = [Layout.from_genes(g) for g in genomes]
        metrics = _evaluate_layouts(layouts, scenario, evo.services, backend)
        f = np.array([[m[k] for k in LAYOUT_OBJECTIVES] if isinstance(m, dict) else [np.inf] * 3 for m in metrics])
        search.tell(f / scale, [isinstance(m, str) for m in metrics])
        front = search.front()
        hv_by_gen.append(round(hypervolume(np.minimum(front.f, 1.0), np.ones(3)), 6))
        if store is not None:
            for layout, m in zip(layouts, metrics, strict=True):
                store.put_trial(_layout_row(study, number, gen, layout, m, now()))
                number += 1
        if on_progress is not None:
            on_progress(gen + 1, gens, front.size, hv_by_gen[-1])
    result = _front_result(search, scale, evo.weights, hv_by_gen)
    if store is not None:
        store.finish(study, "done", result, now=now())
    return result


def _evaluate_layouts(
    layouts: Sequence[Layout], scenario: TwinScenario, services: int, backend: Backend
) -> list[dict[str, float] | str]:
    seeds = scenario.seeds
    items = [(layout, scenario, s, services) for layout in layouts for s in seeds]
    return _pooled(backend.map(run_layout, items), len(seeds), layout_objectives)


def _layout_row(study: str, number: int, gen: int, layout: Layout, m: dict[str, float] | str, now: float) -> TrialRow:
    if isinstance(m, str):
        return TrialRow(study, number, "failed", layout.as_dict(), None, False, {}, m, gen, now)
    return TrialRow(study, number, "complete", layout.as_dict(), None, True, m, "", gen, now)


def _front_result(
    search: ParetoSearch, scale: np.ndarray, weights: Sequence[float], hv_by_gen: list[float]
) -> dict[str, Any]:
    front = search.front()
    points = []
    raw = front.f * scale
    for x, f in zip(front.x, raw, strict=True):
        layout = Layout.from_genes(x)
        points.append({"layout": layout.as_dict(), **{k: float(v) for k, v in zip(LAYOUT_OBJECTIVES, f, strict=True)}})
    points.sort(key=lambda p: (p["cost_per_hour"], p["unavailability"]))
    pick = None
    if points:
        ordered = np.array([[p[k] for k in LAYOUT_OBJECTIVES] for p in points])
        pick = points[pick_weighted(ordered, weights)]
    return {
        "method": search.method,
        "generations": search.generation,
        "objectives": list(LAYOUT_OBJECTIVES),
        "front": points,
        "front_size": len(points),
        "hv_by_gen": hv_by_gen,
        "weights": list(weights),
        "pick": pick,
    }
