"""Bayesian optimisation: a Gaussian process over the unit cube and expected improvement.

The first trials are a Latin hypercube (a space-filling start, ``n_init`` of them); after
that each proposal fits scikit-learn's :class:`GaussianProcessRegressor` (Matérn 5/2 with
one length scale per dimension plus a white-noise term, so noisy twin measurements are
smoothed rather than interpolated) to every finished trial and picks, among random and
locally perturbed candidates snapped to the parameters' grids, the one with the highest
expected improvement over the best feasible value. Trials asked but not yet told count as
if they had scored the current best ("constant liar"), so a batch asked for parallel
evaluation spreads out instead of repeating one point.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize
from scipy.stats import norm, qmc

from novacron.extras import require
from novacron.tuning.space import SearchSpace
from novacron.tuning.trial import AskTell, Trial, TrialState

__all__ = ["GPOptimizer", "expected_improvement"]

FloatArray = npt.NDArray[np.float64]
_RANDOM_CANDIDATES = 2048
_LOCAL_CANDIDATES = 256  # per incumbent, around the three best points
_FIT_ITERATIONS = 50  # warm-started from the previous fit, the hyperparameters move little


def _bounded_lbfgs(obj: Any, initial: FloatArray, bounds: FloatArray) -> tuple[FloatArray, float]:
    """Maximise the marginal likelihood with a bounded number of L-BFGS-B steps."""
    res = minimize(obj, initial, method="L-BFGS-B", jac=True, bounds=bounds, options={"maxiter": _FIT_ITERATIONS})
    return res.x, float(res.fun)


def expected_improvement(mean: FloatArray, std: FloatArray, best: float, xi: float = 0.0) -> FloatArray:
    """EI of minimisation at points with posterior ``mean`` and ``std`` against ``best``."""
    std = np.maximum(std, 1e-12)
    gain = best - mean - xi
    z = gain / std
    ei: FloatArray = gain * norm.cdf(z) + std * norm.pdf(z)
    return np.maximum(ei, 0.0)


class GPOptimizer(AskTell):
    """GP + expected improvement with ask/tell (scikit-learn from the ``forecast`` or ``tune`` extra)."""

    def __init__(self, space: SearchSpace, *, seed: int = 0, n_init: int | None = None) -> None:
        super().__init__(space, seed=seed)
        self.n_init = n_init if n_init is not None else max(5, min(10, space.dims + 2))
        self._design: FloatArray = qmc.LatinHypercube(d=space.dims, seed=seed).random(self.n_init)
        self._points: dict[int, FloatArray] = {}
        self._gp_module = require("sklearn.gaussian_process", feature="Bayesian optimisation")
        self._kernel: Any = None

    def _proposed(self, trial: Trial) -> None:
        self._points[trial.number] = self.space.encode(trial.params)

    def inherit(self, previous: AskTell) -> None:
        """Start the next fit from the previous optimiser's kernel hyperparameters."""
        if isinstance(previous, GPOptimizer) and previous.space == self.space:
            self._kernel = previous._kernel

    def _propose(self, number: int) -> dict[str, Any]:
        finished = [t for t in self.trials if t.state is not TrialState.RUNNING]
        if number < self.n_init or len(finished) < 2:
            point = self.space.snap(self._design[number % self.n_init])
        else:
            point = self._next_point(number)
        self._points[number] = point
        return self.space.decode(point)

    def _next_point(self, number: int) -> FloatArray:
        rng = np.random.default_rng([self.seed, number])
        x, y = self._training_set()
        gp = self._fit(x, y, number)
        candidates = self._candidates(rng, x, y)
        mean, std = gp.predict(candidates, return_std=True)
        ei = expected_improvement(mean, std, float(y.min()))
        order = np.argsort(-ei, kind="stable")
        taken = np.array(list(self._points.values()))
        for i in order:
            if np.min(np.abs(taken - candidates[i]).sum(axis=1)) > 1e-9:
                chosen: FloatArray = candidates[i]
                return chosen
        return self.space.snap(rng.random(self.space.dims))  # every candidate was taken: explore

    def _training_set(self) -> tuple[FloatArray, FloatArray]:
        xs, ys = [], []
        told = [t for t in self.trials if t.state is not TrialState.RUNNING]
        for t in told:
            xs.append(self._points[t.number])
            ys.append(self.effective_value(t))
        liar = min(ys)
        for t in self.trials:
            if t.state is TrialState.RUNNING and t.number in self._points:
                xs.append(self._points[t.number])
                ys.append(liar)
        return np.array(xs), np.array(ys, dtype=np.float64)

    def _fit(self, x: FloatArray, y: FloatArray, number: int) -> Any:
        gp_mod = self._gp_module
        kernel = self._kernel if self._kernel is not None else self._initial_kernel()
        gp = gp_mod.GaussianProcessRegressor(
            kernel=kernel, normalize_y=True, optimizer=_bounded_lbfgs, random_state=self.seed * 10_007 + number
        )
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")  # convergence notes from the kernel fit are not errors
            gp.fit(x, y)
        self._kernel = gp.kernel_  # the next fit starts from these hyperparameters
        return gp

    def _initial_kernel(self) -> Any:
        kernels = self._gp_module.kernels
        matern = kernels.Matern(length_scale=np.full(self.space.dims, 0.3), length_scale_bounds=(1e-2, 1e2), nu=2.5)
        return kernels.ConstantKernel(1.0, (1e-3, 1e3)) * matern + kernels.WhiteKernel(1e-3, (1e-8, 1e-1))

    def _candidates(self, rng: np.random.Generator, x: FloatArray, y: FloatArray) -> FloatArray:
        d = self.space.dims
        pools = [rng.random((_RANDOM_CANDIDATES, d))]
        for i in np.argsort(y, kind="stable")[:3]:
            for scale in (0.03, 0.1, 0.25):
                local = x[i] + rng.normal(0.0, scale, (_LOCAL_CANDIDATES // 3, d))
                pools.append(np.clip(local, 0.0, 1.0))
        raw = np.vstack(pools)
        return self.space.snap(raw)
