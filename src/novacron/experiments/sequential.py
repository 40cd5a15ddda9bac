"""The always-valid test used for every decision: the mixture sequential probability ratio test.

For the difference ``d = mean_B − mean_A`` with variance ``s² = var_A/n_A + var_B/n_B``
and a normal mixing distribution ``θ ~ N(0, τ²)`` over the effect, the mixture likelihood
ratio against ``θ = 0`` is (Johari, Pekelis & Walsh, *Always valid inference*, 2017)::

    Λ = sqrt(s² / (s² + τ²)) · exp(τ² d² / (2 s² (s² + τ²)))

``Λ`` is a nonnegative martingale under the null, so by Ville's inequality the chance it
*ever* reaches ``1/α`` is at most ``α``: the test may be looked at after every batch, as
often as wanted, and stopped at any time. Inverting it gives a confidence sequence, an
interval for the effect valid at all times at once. Functions take numpy arrays or
scalars, so the benchmark runs thousands of experiments in one call.

Proportions (error ratios) use the same test with the Bernoulli variance of each arm;
a half-count added to both (Jeffreys-style) keeps an arm with no errors from having zero
variance, which would make any difference look infinitely significant.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.special import logsumexp

__all__ = [
    "SequentialResult",
    "bernoulli_variance",
    "confidence_radius",
    "log_mixture_ratio",
    "msprt",
    "tau_grid",
]

Array = npt.NDArray[np.float64]
_TINY = 1e-300


def bernoulli_variance(successes: Any, n: Any) -> Array:
    """Per-observation variance of a 0/1 arm with a half-count prior (never zero)."""
    p = (np.asarray(successes, dtype=float) + 0.5) / (np.asarray(n, dtype=float) + 1.0)
    return np.asarray(p * (1.0 - p), dtype=float)


def tau_grid(smallest: float, largest: float = 0.5, factor: float = 4.0, most: int = 8) -> tuple[float, ...]:
    """Mixing scales from ``smallest`` up by ``factor`` to ``largest``: one per effect size worth catching fast."""
    if not 0 < smallest <= largest or factor <= 1:
        raise ValueError("need 0 < smallest <= largest and factor > 1")
    taus = [smallest]
    while taus[-1] * factor <= largest and len(taus) < most:
        taus.append(taus[-1] * factor)
    return tuple(taus)


def log_mixture_ratio(diff: Any, var_diff: Any, taus: Sequence[float]) -> Array:
    """``log Λ`` of the normal-mixture SPRT, averaged over the mixing scales ``taus``.

    An equal-weight average of martingales is a martingale, so a grid of scales keeps the
    guarantee while catching a large regression about as fast as a test tuned to it.
    """
    if not taus or min(taus) <= 0:
        raise ValueError(f"taus must be positive (got {taus})")
    d = np.asarray(diff, dtype=float)[..., None]
    s2 = np.maximum(np.asarray(var_diff, dtype=float), _TINY)[..., None]
    t2 = np.asarray(taus, dtype=float) ** 2
    each = 0.5 * np.log(s2 / (s2 + t2)) + t2 * d * d / (2.0 * s2 * (s2 + t2))
    return np.asarray(logsumexp(each, axis=-1) - np.log(len(taus)), dtype=float)


def confidence_radius(var_diff: float, taus: Sequence[float], alpha: float) -> float:
    """Half-width of the (1−α) confidence sequence around ``d`` at this look.

    ``Λ`` grows with ``|d − θ|``, so the set of effects not rejected is an interval; its
    half-width is where the mixture reaches ``1/α``, found by bisection.
    """
    level = np.log(1.0 / alpha)
    hi = 1.0
    while float(log_mixture_ratio(hi, var_diff, taus)) < level:
        hi *= 2.0
    lo = 0.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if float(log_mixture_ratio(mid, var_diff, taus)) < level:
            lo = mid
        else:
            hi = mid
    return hi


@dataclass(frozen=True, slots=True)
class SequentialResult:
    """One look of the mSPRT at a two-arm comparison."""

    diff: float  # mean_B − mean_A
    log_lr: float
    p_value: float  # min(1, 1/Λ) at this look; the always-valid p-value is its running minimum
    ci: tuple[float, float]  # the confidence sequence for diff at this look
    significant: bool

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "diff": self.diff,
            "log_lr": self.log_lr,
            "p_value": self.p_value,
            "ci": [_finite(x) for x in self.ci],
            "significant": self.significant,
        }


def _finite(x: float) -> float | None:
    return None if not np.isfinite(x) else float(x)


def msprt(
    mean_a: float,
    var_a: float,
    n_a: int,
    mean_b: float,
    var_b: float,
    n_b: int,
    *,
    taus: Sequence[float],
    alpha: float,
) -> SequentialResult:
    """Judge arm B against arm A now, from each arm's mean, per-observation variance and count.

    With an empty arm there is no evidence: p = 1 and an unbounded interval.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1) (got {alpha})")
    if n_a == 0 or n_b == 0:
        return SequentialResult(0.0, 0.0, 1.0, (-np.inf, np.inf), False)
    diff = mean_b - mean_a
    s2 = var_a / n_a + var_b / n_b
    log_lr = float(log_mixture_ratio(diff, s2, taus))
    radius = confidence_radius(s2, taus, alpha)
    p = float(min(1.0, np.exp(-log_lr)))
    significant = bool(log_lr >= np.log(1.0 / alpha))  # a numpy bool would reach JSON as the string "False"
    return SequentialResult(diff, log_lr, p, (diff - radius, diff + radius), significant)
