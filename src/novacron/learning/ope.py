"""Off-policy evaluation: what a policy would have earned on decisions another policy made.

Each logged decision keeps its context, the allowed set, the action taken, the propensity
the logging policy had of taking it, and the reward. Inverse propensity scoring reweights
each reward by how much more (or less) likely the new policy is to take the same action;
the doubly robust estimate adds a model of the reward (the new policy's own value
estimates) and corrects it with the same weights, which keeps it unbiased when either the
propensities or the model are right, and lowers the variance (Dudík, Langford and Li, 2011).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from novacron.errors import InputError
from novacron.learning.context import FaultContext

__all__ = ["OpeEstimate", "Record", "doubly_robust", "doubly_robust_terms", "ips"]


@dataclass(frozen=True, slots=True)
class Record:
    """One logged decision and its reward."""

    context: FaultContext
    allowed: tuple[str, ...]
    action: str
    propensity: float
    reward: float


@dataclass(frozen=True, slots=True)
class OpeEstimate:
    """A policy's estimated mean reward per decision, and how many decisions it rests on."""

    value: float
    n: int


Probabilities = Callable[[FaultContext, Sequence[str]], Mapping[str, float]]
ValueModel = Callable[[FaultContext, str], float]


def _check(records: Sequence[Record]) -> None:
    if not records:
        raise InputError("no logged decisions to evaluate on", where="records")
    for i, rec in enumerate(records):
        if not 0 < rec.propensity <= 1 or not math.isfinite(rec.reward):
            raise InputError(f"propensity must be in (0, 1] and reward finite, got {rec}", where=f"records[{i}]")


def ips(records: Sequence[Record], target: Probabilities) -> OpeEstimate:
    """Inverse propensity estimate of ``target``'s mean reward."""
    _check(records)
    total = 0.0
    for rec in records:
        total += target(rec.context, rec.allowed).get(rec.action, 0.0) / rec.propensity * rec.reward
    return OpeEstimate(total / len(records), len(records))


def doubly_robust_terms(records: Sequence[Record], target: Probabilities, model: ValueModel) -> list[float]:
    """Each decision's doubly robust term (their mean is the estimate; their spread, its error)."""
    _check(records)
    terms = []
    for rec in records:
        probs = target(rec.context, rec.allowed)
        direct = sum(p * model(rec.context, a) for a, p in probs.items())
        weight = probs.get(rec.action, 0.0) / rec.propensity
        terms.append(direct + weight * (rec.reward - model(rec.context, rec.action)))
    return terms


def doubly_robust(records: Sequence[Record], target: Probabilities, model: ValueModel) -> OpeEstimate:
    """Doubly robust estimate: the model's value under ``target``, corrected by weighted residuals."""
    terms = doubly_robust_terms(records, target, model)
    return OpeEstimate(sum(terms) / len(terms), len(terms))
