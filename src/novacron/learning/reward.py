"""The reward of one step: fast verified recovery is good, actions cost, harm costs most."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RewardWeights", "reward"]


@dataclass(frozen=True, slots=True)
class RewardWeights:
    """Units are seconds of outage: an action costs like a second per level of its risk, a failed step like ten."""

    # Per level of the step's catalog risk (low 1, medium 2, high 3): of two steps that heal
    # as fast, the less disruptive wins (a restart over a configuration rollback on a crash).
    action_cost: float = 1.0
    failure_penalty: float = 10.0  # the step did not heal: the next one starts from here
    harm_penalty: float = 100.0  # the step made things worse: it did not heal and its undo failed
    feedback: float = 20.0  # an operator's good (+) or bad (−) mark


def reward(
    elapsed_s: float,
    *,
    healed: bool,
    harmed: bool = False,
    feedback: int = 0,
    weights: RewardWeights | None = None,
    risk: int = 1,
) -> float:
    """Negative time the step took, minus its cost (``risk`` levels of it) and any penalty, plus feedback (±1)."""
    w = weights or RewardWeights()
    value = -max(0.0, elapsed_s) - w.action_cost * max(1, risk)
    if not healed:
        value -= w.failure_penalty
    if harmed:
        value -= w.harm_penalty
    return value + w.feedback * feedback
