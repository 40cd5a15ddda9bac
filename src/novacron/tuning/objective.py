"""Objectives: metrics with a direction, weights that fold them into one score, hard constraints.

A candidate is measured as a mapping of metric name to value (MTTR p95, false actions per
day, availability, cost per hour …). :class:`Objective` turns that into the single number
the Bayesian optimiser minimises and says whether every hard constraint holds; a
multi-objective search reads :meth:`Objective.vector` instead and keeps every metric apart.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from novacron.errors import InputError

__all__ = ["Constraint", "Direction", "Objective", "Score"]

Direction = Literal["min", "max"]


@dataclass(frozen=True, slots=True)
class Constraint:
    """A hard limit on one metric: ``metric <= bound`` or ``metric >= bound``."""

    metric: str
    op: Literal["<=", ">="]
    bound: float

    def violation(self, value: float) -> float:
        """How far ``value`` is on the wrong side (0 when the constraint holds)."""
        gap = value - self.bound if self.op == "<=" else self.bound - value
        return max(0.0, gap)

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.bound:g}"


@dataclass(frozen=True, slots=True)
class Score:
    """One candidate's score: the weighted value, feasibility and what was violated."""

    value: float
    feasible: bool
    violated: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Objective:
    """Weighted metrics to minimise (``max`` metrics count negatively) under hard constraints."""

    weights: Mapping[str, float]
    directions: Mapping[str, Direction]
    constraints: tuple[Constraint, ...] = ()

    def __post_init__(self) -> None:
        if not self.weights:
            raise InputError("name at least one objective", where="objectives")
        for name, weight in self.weights.items():
            if name not in self.directions:
                raise InputError(f"no direction for {name}", where=f"objectives.{name}")
            if not (math.isfinite(weight) and weight > 0):
                raise InputError(f"weight must be finite and > 0, got {weight}", where=f"objectives.{name}")

    @property
    def metrics(self) -> tuple[str, ...]:
        """Metric names the objective and its constraints read."""
        names = list(self.weights)
        names += [c.metric for c in self.constraints if c.metric not in names]
        return tuple(names)

    def score(self, metrics: Mapping[str, float]) -> Score:
        """Fold a candidate's metrics into one score to minimise."""
        missing = [m for m in self.metrics if m not in metrics]
        if missing:
            raise InputError(f"the evaluation did not measure {', '.join(missing)}", where="metrics")
        value = 0.0
        for name, weight in self.weights.items():
            x = float(metrics[name])
            value += weight * (x if self.directions[name] == "min" else -x)
        violated = tuple(str(c) for c in self.constraints if c.violation(float(metrics[c.metric])) > 0)
        return Score(value, not violated, violated)

    def vector(self, metrics: Mapping[str, float]) -> list[float]:
        """Every weighted metric as its own objective to minimise (for Pareto search)."""
        return [float(metrics[n]) if self.directions[n] == "min" else -float(metrics[n]) for n in self.weights]
