"""``novacron bench experiments``, the statistics half: A/A false positives, power, samples to decision.

Thousands of simulated experiments run the product's own tests (:mod:`novacron.experiments`)
vectorised over experiments: each is looked at after every batch, the way the controller
looks at a live canary. Requests are drawn per batch (errors as Bernoulli trials, latencies
from a log-normal), so what is measured is the sequential test itself, at its real looks.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats

from novacron.experiments.canary import CanaryPolicy
from novacron.experiments.fixed import sample_size, two_proportion_z
from novacron.experiments.sequential import bernoulli_variance, log_mixture_ratio

__all__ = ["run_stats_bench"]

_LOG_SIGMA = 0.5  # spread of the simulated log-latency (a p95/p50 ratio of about 2.3)


def _first_true(hit: np.ndarray) -> np.ndarray:
    """Index of the first True per row, or -1."""
    first = np.argmax(hit, axis=1)
    return np.where(hit.any(axis=1), first, -1)


def _proportion_paths(
    rng: np.random.Generator, n_exp: int, looks: int, batch: int, p_a: float, p_b: float
) -> tuple[Any, Any, Any]:
    """Cumulative (successes A, successes B, n per arm) after each look."""
    xa = np.cumsum(rng.binomial(batch, p_a, size=(n_exp, looks)), axis=1)
    xb = np.cumsum(rng.binomial(batch, p_b, size=(n_exp, looks)), axis=1)
    n = batch * np.arange(1, looks + 1, dtype=float)
    return xa, xb, np.broadcast_to(n, xa.shape)


def _msprt_hits(xa: Any, xb: Any, n: Any, taus: tuple[float, ...], alpha: float) -> np.ndarray:
    var = bernoulli_variance(xa, n) / n + bernoulli_variance(xb, n) / n
    return np.asarray(log_mixture_ratio(xb / n - xa / n, var, taus) >= np.log(1 / alpha))


def _binomial_ci(k: int, n: int, level: float = 0.95) -> list[float]:
    """Clopper-Pearson interval for k of n."""
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=level, method="exact")
    return [round(float(ci.low), 4), round(float(ci.high), 4)]


def aa(*, n_exp: int, looks: int, batch: int, p: float, policy: CanaryPolicy, seed: int) -> dict[str, Any]:
    """A/A: both arms identical; how often does each test ever fire over ``looks`` looks?"""
    rng = np.random.default_rng(seed)
    xa, xb, n = _proportion_paths(rng, n_exp, looks, batch, p, p)
    fired = int(_msprt_hits(xa, xb, n, policy.error_taus(), policy.alpha).any(axis=1).sum())
    _, pz = two_proportion_z(xa, n, xb, n)
    naive = int((pz < policy.alpha).any(axis=1).sum())
    return {
        "experiments": n_exp,
        "looks": looks,
        "batch_per_arm": batch,
        "error_ratio": p,
        "fpr": round(fired / n_exp, 4),
        "fpr_ci": _binomial_ci(fired, n_exp),
        "naive_fpr": round(naive / n_exp, 4),
        "naive_fpr_ci": _binomial_ci(naive, n_exp),
        "alpha": policy.alpha,
    }


def _decisions(hits: np.ndarray, batch: int, fixed_n: int) -> dict[str, Any]:
    first = _first_true(hits)
    decided = first >= 0
    samples = (first[decided] + 1) * batch
    return {
        "power": round(float(decided.mean()), 4),
        "power_by_fixed_n": round(float((decided & ((first + 1) * batch <= fixed_n)).mean()), 4),
        "median_samples_per_arm": int(np.median(samples)) if samples.size else None,
    }


def power_errors(
    *, n_exp: int, p: float, lift: float, policy: CanaryPolicy, horizon: float, looks: int, seed: int
) -> dict[str, Any]:
    """Error ratio up by ``lift`` (relative): share of experiments the mSPRT flags within the horizon."""
    q = p * (1 + lift)
    fixed_n = sample_size(p * (1 - p), q * (1 - q), q - p, alpha=policy.alpha, power=policy.power)
    batch = max(1, int(horizon * fixed_n / looks))
    rng = np.random.default_rng(seed)
    xa, xb, n = _proportion_paths(rng, n_exp, looks, batch, p, q)
    out = _decisions(_msprt_hits(xa, xb, n, policy.error_taus(), policy.alpha), batch, fixed_n)
    return {"baseline": p, "variant": round(q, 5), "fixed_n_per_arm": fixed_n, "horizon_per_arm": batch * looks, **out}


def power_latency(
    *, n_exp: int, lift: float, policy: CanaryPolicy, looks: int, batch: int, seed: int
) -> dict[str, Any]:
    """p95 latency up by ``lift``: the share-over-baseline-p95 test on simulated request latencies.

    The threshold is the baseline's p95 from a warm-up of its first requests, as the
    controller's tally does; each look then counts requests over it in both arms.
    """
    rng = np.random.default_rng(seed)
    warm = rng.lognormal(np.log(0.05), _LOG_SIGMA, size=(n_exp, 200))
    threshold = np.quantile(warm, policy.quantile, axis=1)[:, None, None]
    a = rng.lognormal(np.log(0.05), _LOG_SIGMA, size=(n_exp, looks, batch))
    b = rng.lognormal(np.log(0.05 * (1 + lift)), _LOG_SIGMA, size=(n_exp, looks, batch))
    xa = np.cumsum((a >= threshold).sum(axis=2), axis=1)
    xb = np.cumsum((b >= threshold).sum(axis=2), axis=1)
    n = np.broadcast_to(batch * np.arange(1, looks + 1, dtype=float), xa.shape)
    pa = 1 - policy.quantile
    pb = float(stats.norm.sf(stats.norm.isf(pa) - np.log(1 + lift) / _LOG_SIGMA))
    fixed_n = sample_size(pa * (1 - pa), pb * (1 - pb), pb - pa, alpha=policy.alpha, power=policy.power)
    out = _decisions(_msprt_hits(xa, xb, n, policy.slow_taus(), policy.alpha), batch, fixed_n)
    return {
        "p95_lift": lift,
        "slow_share": [round(pa, 4), round(pb, 4)],
        "fixed_n_per_arm": fixed_n,
        "horizon_per_arm": batch * looks,
        **out,
    }


def run_stats_bench(*, experiments: int = 2000, looks: int = 100, seed: int = 0) -> dict[str, Any]:
    """The A/A, power and samples-to-decision figures."""
    policy = CanaryPolicy(base_rate=0.05, mde=0.1)
    a_a = aa(n_exp=experiments, looks=looks, batch=200, p=0.05, policy=policy, seed=seed)
    n_power = max(200, experiments // 4)
    err = power_errors(n_exp=n_power, p=0.05, lift=0.1, policy=policy, horizon=3.0, looks=looks, seed=seed + 1)
    lat = power_latency(n_exp=n_power, lift=0.2, policy=policy, looks=looks, batch=20, seed=seed + 2)
    return {
        "aa": a_a,
        "power": {"error_ratio": err, "latency_p95": lat},
        "samples_vs_fixed": {
            name: round(r["median_samples_per_arm"] / r["fixed_n_per_arm"], 3) if r["median_samples_per_arm"] else None
            for name, r in (("error_ratio", err), ("latency_p95", lat))
        },
    }
