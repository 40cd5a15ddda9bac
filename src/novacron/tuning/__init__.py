"""Self-optimisation: search spaces, objectives and ask/tell optimisers (pure computation).

Define a :class:`SearchSpace` of typed parameters, fold measured metrics into a score with
an :class:`Objective` (weights, directions, hard constraints), and drive an optimiser —
:class:`GPOptimizer` (Gaussian process + expected improvement), :class:`OptunaTPE` or
:class:`RandomSearch` — with ``ask``/``tell``; the caller owns the loop and the
evaluation. :func:`make_optimizer` picks one by name.
"""

from __future__ import annotations

from novacron.errors import InputError
from novacron.tuning.bayes import GPOptimizer
from novacron.tuning.objective import Constraint, Direction, Objective, Score
from novacron.tuning.random_search import RandomSearch
from novacron.tuning.space import KINDS, Param, ParamKind, SearchSpace
from novacron.tuning.tpe import OptunaTPE
from novacron.tuning.trial import AskTell, Trial, TrialState

__all__ = [
    "KINDS",
    "METHODS",
    "AskTell",
    "Constraint",
    "Direction",
    "GPOptimizer",
    "Objective",
    "OptunaTPE",
    "Param",
    "ParamKind",
    "RandomSearch",
    "Score",
    "SearchSpace",
    "Trial",
    "TrialState",
    "make_optimizer",
]

METHODS = ("gp", "tpe", "random")


def make_optimizer(method: str, space: SearchSpace, *, seed: int = 0) -> AskTell:
    """An optimiser by name: ``gp`` (GP + EI), ``tpe`` (Optuna) or ``random``."""
    if method == "gp":
        return GPOptimizer(space, seed=seed)
    if method == "tpe":
        return OptunaTPE(space, seed=seed)
    if method == "random":
        return RandomSearch(space, seed=seed)
    raise InputError(f"unknown method {method!r} (one of {', '.join(METHODS)})", where="method")
