"""The fleet spec's ``tuning:`` block: what to search, what to optimise, on which twin scenario.

Kept beside :mod:`novacron.settings` (which embeds it as ``FleetSpec.tuning``) so the spec
stays one validated document while the search machinery lives in the optional
:mod:`novacron.tuning` and :mod:`novacron.evolution` layers. Only the shape is checked
here; whether a parameter path exists in the spec and whether the twin can model it is
checked when a study is built, with the error naming ``tuning.params[i].path``.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["AbSpec", "EvolveSpec", "ScenarioSpec", "TuneParam", "TuningSpec"]

_CONSTRAINT = re.compile(r"^\s*([a-z0-9_]+)\s*(<=|>=)\s*(-?[0-9.]+(?:e-?[0-9]+)?)\s*$")


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TuneParam(_Frozen):
    """One searched parameter: a spec path (or ``twin.<knob>``) with bounds or choices."""

    path: str = Field(min_length=1, description="e.g. targets.api.checks.0.interval_s, or twin.max_restarts.")
    type: Literal["float", "int", "log", "categorical"] = "float"
    bounds: tuple[float, float] | None = Field(None, description="[low, high] for float, int and log.")
    choices: list[Any] | None = Field(None, description="The values of a categorical parameter.")

    @model_validator(mode="after")
    def _shape(self) -> TuneParam:
        if self.type == "categorical":
            if not self.choices:
                raise ValueError("a categorical parameter needs choices")
        elif self.bounds is None:
            raise ValueError(f"a {self.type} parameter needs bounds: [low, high]")
        elif not self.bounds[0] < self.bounds[1]:
            raise ValueError(f"bounds reversed or empty: [{self.bounds[0]}, {self.bounds[1]}]")
        return self


class ScenarioSpec(_Frozen):
    """The twin scenario every candidate faces (same seeds: common random numbers)."""

    hosts: int = Field(4, ge=1, le=200)
    vms: int = Field(16, ge=1, le=5000)
    fault_rate_per_hour: float = Field(48.0, ge=0)
    window_s: float = Field(600.0, gt=0, description="Faults and bursts arrive in this window.")
    tail_s: float = Field(300.0, ge=0, description="Then the run goes on so repairs can finish.")
    bursts_per_hour: float = Field(30.0, ge=0)
    burst_cores: float = Field(24.0, ge=0)
    dt_s: float = Field(5.0, gt=0, le=60)
    core_price_per_hour: float = Field(0.04, ge=0)
    kinds: list[str] = Field(default_factory=list, description="Fault kinds drawn (empty: the twin's mix).")


class EvolveSpec(_Frozen):
    """Layout search: services to carry and the weights that pick one point of the front."""

    services: int = Field(6, ge=1, le=100)
    population: int = Field(16, ge=4, le=1000)
    generations: int = Field(30, ge=1, le=10_000)
    weights: tuple[float, float, float] = Field(
        (0.3, 0.3, 0.4), description="cost, unavailability, MTTR p95 (performance): picks one point of the front."
    )


class AbSpec(_Frozen):
    """A/B before promotion: the winner runs as a canary behind its target's frontend first.

    The fields are the canary's (see the ``experiments:`` block); ``timeout_s`` bounds the
    wait for its decision, after which the canary is stopped and nothing is promoted.
    """

    steps: list[float] = Field(default_factory=lambda: [1.0, 10.0, 50.0, 100.0], min_length=2)
    alpha: float = Field(0.05, gt=0, lt=1)
    mde: float = Field(0.1, gt=0)
    latency_mde: float = Field(0.2, gt=0)
    base_rate: float = Field(0.01, gt=0, lt=1)
    min_samples: int = Field(100, ge=1)
    max_samples: int = Field(200_000, ge=1)
    look_interval_s: float = Field(1.0, ge=0.05, le=3600)
    timeout_s: float = Field(1800.0, gt=0, le=7 * 86_400, description="Longest wait for the canary's decision.")

    def experiment_settings(self) -> dict[str, Any]:
        """The canary's settings as the experiments API takes them."""
        return self.model_dump(exclude={"timeout_s"})


class TuningSpec(_Frozen):
    """``tuning:``: searched parameters, objectives with weights, hard constraints, the twin scenario."""

    method: Literal["gp", "tpe", "random"] = "gp"
    budget: int = Field(40, ge=1, le=100_000, description="Candidates evaluated.")
    seeds: list[int] = Field(default_factory=lambda: [0, 1], min_length=1, description="Twin seeds per candidate.")
    validation_seeds: list[int] = Field(
        default_factory=lambda: [100, 101, 102], min_length=1, description="Fresh seeds the winner is re-run on."
    )
    recheck: int = Field(3, ge=1, le=50, description="Best candidates re-evaluated on fresh seeds before one wins.")
    params: list[TuneParam] = Field(default_factory=list)
    objectives: dict[str, float] = Field(
        default_factory=lambda: {"mttr_p95_s": 1.0, "false_actions_per_day": 0.1},
        description="Metric → weight (> 0); 'max' metrics such as availability count negatively.",
    )
    constraints: list[str] = Field(default_factory=list, description="Hard limits, e.g. 'availability >= 0.9'.")
    scenario: ScenarioSpec = Field(default_factory=ScenarioSpec)
    evolve: EvolveSpec = Field(default_factory=EvolveSpec)
    ab: AbSpec | None = Field(
        None, description="When set, --promote runs the winner as a canary on the real fleet before promoting it."
    )

    @field_validator("constraints")
    @classmethod
    def _constraints(cls, value: list[str]) -> list[str]:
        for i, text in enumerate(value):
            if not _CONSTRAINT.match(text):
                raise ValueError(f"[{i}] {text!r} is not 'metric <= number' or 'metric >= number'")
        return value

    def parsed_constraints(self) -> list[tuple[str, Literal["<=", ">="], float]]:
        """The constraints as (metric, operator, bound)."""
        out: list[tuple[str, Literal["<=", ">="], float]] = []
        for text in self.constraints:
            m = _CONSTRAINT.match(text)
            assert m is not None  # checked by the validator
            out.append((m.group(1), "<=" if m.group(2) == "<=" else ">=", float(m.group(3))))
        return out
