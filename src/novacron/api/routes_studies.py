"""Tuning studies and layout searches as the store holds them: ``GET /studies`` and ``GET /studies/{name}``.

The dashboard draws a study's trials as parallel coordinates (one line per trial through
its parameters and its score) and a layout search's Pareto front, from these two reads.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query

from novacron.api.auth import Viewer
from novacron.api.context import ApiContext, get_ctx
from novacron.api.errors import ERROR_RESPONSES
from novacron.store.studies import StudyRow, StudyStore, TrialRow

__all__ = ["router"]

router = APIRouter(responses=ERROR_RESPONSES)
Ctx = Annotated[ApiContext, Depends(get_ctx)]
_NAME = Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$", description="Study name.")


def _summary(row: StudyRow, trials: list[TrialRow]) -> dict[str, Any]:
    best = row.result.get("best") if isinstance(row.result, dict) else None
    return {
        "name": row.name,
        "kind": row.kind,
        "status": row.status,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "trial_count": len(trials),
        "complete": sum(t.state == "complete" for t in trials),
        "failed": sum(t.state == "failed" for t in trials),
        "best_value": best.get("value") if isinstance(best, dict) else None,
        "front_size": row.result.get("front_size") if isinstance(row.result, dict) else None,
    }


def _trial(t: TrialRow) -> dict[str, Any]:
    return {
        "number": t.number,
        "state": t.state,
        "params": t.params,
        "value": t.value,
        "feasible": t.feasible,
        "metrics": t.metrics,
        "generation": t.generation,
        "detail": t.detail,
    }


@router.get("/studies", tags=["tuning"])
async def list_studies(
    ctx: Ctx,
    _who: Viewer,
    kind: Annotated[str | None, Query(pattern="^(tune|evolve)$", description="Only tune or evolve studies.")] = None,
) -> list[dict[str, Any]]:
    """Every study, newest first: kind, status, trial counts, best value or Pareto front size."""
    repo = StudyStore(ctx.store)
    return [_summary(s, repo.trials(s.name)) for s in repo.studies(kind=kind)]


@router.get("/studies/{name}", tags=["tuning"])
async def show_study(ctx: Ctx, _who: Viewer, name: Annotated[str, _NAME]) -> dict[str, Any]:
    """One study with every trial (parameters, score, metrics) and its result (winner, or Pareto front)."""
    repo = StudyStore(ctx.store)
    row = repo.study(name)
    trials = repo.trials(name)
    return {
        **_summary(row, trials),
        "params": sorted({k for t in trials for k in t.params}),
        "result": row.result,
        "trials": [_trial(t) for t in trials],
    }
