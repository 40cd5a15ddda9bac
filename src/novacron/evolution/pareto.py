"""NSGA-II (two or three objectives) and NSGA-III (more) from pymoo behind ask/tell.

The caller owns the loop: :meth:`ParetoSearch.ask` hands out a generation's genomes as
rows, the caller evaluates them (twin runs, in a pool or on a cluster) and gives back the
objective rows with :meth:`ParetoSearch.tell`. A genome whose evaluation failed is told
with ``failed`` set: it becomes infeasible (an extra constraint every other genome meets),
so it never reaches the front and never counts as a good score. pymoo lives in the
``tune`` extra.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from novacron.errors import InputError
from novacron.extras import require

__all__ = ["Front", "ParetoSearch", "hypervolume"]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class Front:
    """The non-dominated feasible genomes found so far and their objective rows."""

    x: FloatArray
    f: FloatArray

    @property
    def size(self) -> int:
        """Number of points on the front."""
        return int(self.f.shape[0])


def hypervolume(f: npt.ArrayLike, ref: npt.ArrayLike) -> float:
    """Exact hypervolume dominated by the rows of ``f`` (minimisation) up to the reference point."""
    arr = np.asarray(f, dtype=np.float64)
    if arr.size == 0:
        return 0.0
    hv_mod = require("pymoo.indicators.hv", feature="hypervolume")
    return float(hv_mod.HV(ref_point=np.asarray(ref, dtype=np.float64))(arr))


class ParetoSearch:
    """Multi-objective evolutionary search with ask/tell (NSGA-II up to three objectives)."""

    def __init__(
        self,
        *,
        xl: npt.ArrayLike,
        xu: npt.ArrayLike,
        n_obj: int,
        pop_size: int,
        seed: int = 0,
        integer: bool = False,
        operators: dict[str, Any] | None = None,
    ) -> None:
        """``operators`` may hold pymoo ``sampling``, ``crossover`` and ``mutation`` objects."""
        if n_obj < 2:
            raise InputError(f"a Pareto search needs at least 2 objectives, got {n_obj}", where="objectives")
        if pop_size < 4:
            raise InputError(f"must be >= 4, got {pop_size}", where="population")
        lo, hi = np.asarray(xl, dtype=np.float64), np.asarray(xu, dtype=np.float64)
        if lo.shape != hi.shape or lo.ndim != 1 or not (lo < hi).all():
            raise InputError("gene bounds must be two equal-length vectors with low < high", where="genes")
        problem_mod = require("pymoo.core.problem", feature="multi-objective search")
        self.n_obj = n_obj
        self.problem = problem_mod.Problem(
            n_var=lo.shape[0], n_obj=n_obj, n_ieq_constr=1, xl=lo, xu=hi, vtype=int if integer else float
        )
        self.algorithm = _algorithm(n_obj, pop_size, dict(operators or {}))
        self.algorithm.setup(self.problem, seed=seed, verbose=False)
        self.generation = 0
        self._asked: Any = None

    @property
    def method(self) -> str:
        """``nsga2`` or ``nsga3``."""
        return "nsga2" if self.n_obj <= 3 else "nsga3"

    def ask(self) -> FloatArray:
        """The next genomes to evaluate (one row each)."""
        if self._asked is not None:
            raise InputError("tell the previous generation before asking again", where="ask")
        self._asked = self.algorithm.ask()
        x: FloatArray = np.asarray(self._asked.get("X"), dtype=np.float64)
        return x

    def tell(self, f: npt.ArrayLike, failed: npt.ArrayLike | None = None) -> None:
        """Objective rows (to minimise) for the asked genomes; ``failed[i]`` marks a broken evaluation."""
        if self._asked is None:
            raise InputError("nothing was asked", where="tell")
        n = len(self._asked)
        arr = np.asarray(f, dtype=np.float64).reshape(n, self.n_obj)
        bad = np.zeros(n, dtype=bool) if failed is None else np.asarray(failed, dtype=bool).reshape(n)
        bad |= ~np.isfinite(arr).all(axis=1)
        arr = np.where(bad[:, None], 0.0, arr)  # never read: the genome is infeasible
        self._asked.set("F", arr)
        self._asked.set("G", np.where(bad, 1.0, -1.0)[:, None])
        self.algorithm.tell(infills=self._asked)
        self._asked = None
        self.generation += 1

    def front(self) -> Front:
        """The feasible non-dominated set of everything told so far."""
        opt = self.algorithm.opt
        if opt is None or len(opt) == 0:
            return Front(np.zeros((0, self.problem.n_var)), np.zeros((0, self.n_obj)))
        feasible = np.asarray(opt.get("feas"), dtype=bool).reshape(-1)
        x = np.asarray(opt.get("X"), dtype=np.float64)[feasible]
        f = np.asarray(opt.get("F"), dtype=np.float64)[feasible]
        return Front(x, f)


def _algorithm(n_obj: int, pop_size: int, operators: dict[str, Any]) -> Any:
    if n_obj <= 3:
        nsga2 = require("pymoo.algorithms.moo.nsga2", feature="NSGA-II")
        return nsga2.NSGA2(pop_size=pop_size, eliminate_duplicates=True, **operators)
    nsga3 = require("pymoo.algorithms.moo.nsga3", feature="NSGA-III")
    ref_dirs = require("pymoo.util.ref_dirs", feature="NSGA-III").get_reference_directions(
        "das-dennis", n_obj, n_partitions=max(2, 12 // n_obj)
    )
    return nsga3.NSGA3(ref_dirs=ref_dirs, pop_size=pop_size, eliminate_duplicates=True, **operators)
