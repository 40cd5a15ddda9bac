"""Experiments: list, show (with every look), start and stop canaries behind a frontend.

Starting and stopping go through the controller's experiment runner, so every traffic
change is an executor action behind the safety gate; both are audited with the token's name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from novacron.api.auth import Operator, Principal, Viewer
from novacron.api.context import ApiContext, get_ctx
from novacron.api.errors import ERROR_RESPONSES, ApiError
from novacron.errors import InputError, NovacronError
from novacron.settings import ExperimentSpec
from novacron.store.experiments import ExperimentStore, public_view

if TYPE_CHECKING:
    from novacron.runtime.experiments import ExperimentRunner

__all__ = ["ExperimentIn", "router"]

router = APIRouter(responses=ERROR_RESPONSES)
Ctx = Annotated[ApiContext, Depends(get_ctx)]
_NAME = Path(pattern=r"^[a-z0-9]([a-z0-9_.-]{0,62})$", description="Experiment name.")
_DEFAULT_STEPS = (1.0, 10.0, 50.0, 100.0)


class ExperimentIn(BaseModel):
    """A canary to start: the variant's command beside ``target``'s replicas, from ``split`` % up."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9]([a-z0-9_.-]{0,62})$")
    target: str = Field(min_length=1, max_length=64)
    arm: str = Field("b", pattern=r"^[a-z0-9_]{1,20}$")
    command: list[str] = Field(min_length=1, description="The variant's argv; '{port}' is filled with a free port.")
    split: float | None = Field(None, gt=0, lt=100, description="The first step, percent; later steps as usual.")
    settings: dict[str, Any] = Field(default_factory=dict, description="Other experiment settings (mde, alpha, …).")

    def to_spec(self) -> ExperimentSpec:
        """The experiment's spec; bad settings name their field."""
        data: dict[str, Any] = {**self.settings, "name": self.name, "target": self.target, "arm": self.arm}
        data["command"] = self.command
        if self.split is not None:
            data["steps"] = [self.split, *(s for s in _DEFAULT_STEPS if s > self.split)]
        try:
            return ExperimentSpec.model_validate(data)
        except ValidationError as exc:
            err = exc.errors()[0]
            field = ".".join(str(p) for p in err["loc"])
            message = str(err["msg"]).removeprefix("Value error, ")
            if not field:  # a check across fields names its field first ("arms: …"): keep that as the field
                named, sep, rest = message.partition(": ")
                field, message = (named, rest) if sep and named.isidentifier() else (field, message)
            raise InputError(message, where=field) from exc


def _audit(ctx: ApiContext, who: Principal, verb: str, subject: str, result: str, **detail: Any) -> None:
    ctx.store.audit(now=ctx.clock.now(), actor=who.name, verb=verb, subject=subject, result=result, **detail)


def _runner(ctx: ApiContext) -> ExperimentRunner:
    runner = ctx.live().experiments
    if runner is None:
        raise ApiError(409, "no target of this fleet has a frontend: experiments need one", "target")
    return runner


@router.get("/experiments", tags=["experiments"])
async def list_experiments(ctx: Ctx, _who: Viewer) -> list[dict[str, Any]]:
    """Every experiment, newest first, with each arm's requests, errors and slow requests."""
    runner = ctx.controller.experiments if ctx.controller is not None else None
    if runner is not None:
        return list(runner.all())
    return [public_view(r) for r in ExperimentStore(ctx.store).all()]


@router.get("/experiments/{name}", tags=["experiments"])
async def show_experiment(
    ctx: Ctx,
    _who: Viewer,
    name: Annotated[str, _NAME],
    looks: Annotated[int, Query(ge=0, le=5000, description="At most this many looks, newest.")] = 500,
) -> dict[str, Any]:
    """One experiment and its looks: split, tallies, tests with their confidence sequences, move."""
    runner = ctx.controller.experiments if ctx.controller is not None else None
    repo = ExperimentStore(ctx.store)
    out = dict(runner.describe(name)) if runner is not None else public_view(repo.get(name))
    out["looks"] = [
        {"time": r["time"], "split": r["split"], "move": r["move"], **r["data"]} for r in repo.looks(name, limit=looks)
    ]
    return out


@router.post("/experiments", tags=["experiments"], status_code=201)
async def start_experiment(ctx: Ctx, who: Operator, body: ExperimentIn) -> dict[str, Any]:
    """Start a canary; a variant that does not start, or a bad setting, changes nothing (400)."""
    runner = _runner(ctx)
    try:
        out = await runner.start(body.to_spec(), who=who.name)
    except NovacronError as exc:
        _audit(ctx, who, "experiment.start", body.name, "refused", detail=str(exc))
        raise
    _audit(ctx, who, "experiment.start", body.name, "ok", target=body.target)
    return dict(out)


@router.post("/experiments/{name}/stop", tags=["experiments"])
async def stop_experiment(ctx: Ctx, who: Operator, name: Annotated[str, _NAME]) -> dict[str, Any]:
    """Stop a running experiment: all traffic back to the baseline, the variant stopped."""
    runner = _runner(ctx)
    try:
        out = await runner.stop(name, who=who.name)
    except NovacronError as exc:
        _audit(ctx, who, "experiment.stop", name, "refused", detail=str(exc))
        raise
    _audit(ctx, who, "experiment.stop", name, "ok")
    return dict(out)
