"""The Numenta Anomaly Benchmark scorer (rules as in NAB v1.1), pure computation.

Per file: the first ``min(floor(0.15·n), 750)`` rows are probation and never scored. The
earliest detection inside a labelled window earns ``tp·σ(p)/σ(-1)`` where ``p`` is the
row's relative position in the window; a window without one costs ``-fn``. A detection
outside every window adds ``fp·σ(p)`` (negative), measured past the previous window, or
``-fp`` before the first. The corpus sum ``S`` is normalised to
``100·(S - S_null)/(S_perfect - S_null)``.

Sweeping thresholds is exact and fast: for a window, the earliest detection at threshold
``t`` is the first row whose running maximum of scores reaches ``t``, and false positives
are a suffix sum over rows sorted by score.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from novacron.detectors.base import FloatArray
from novacron.errors import InputError

__all__ = [
    "DEFAULT_PROFILES",
    "CorpusResult",
    "FileCase",
    "Profile",
    "parse_profiles",
    "probation_rows",
    "scaled_sigmoid",
    "score_corpus",
]


@dataclass(frozen=True, slots=True)
class Profile:
    """Weights of one scoring profile."""

    tp: float
    fp: float
    fn: float


DEFAULT_PROFILES: dict[str, Profile] = {
    "standard": Profile(tp=1.0, fp=0.11, fn=1.0),
    "reward_low_FP_rate": Profile(tp=1.0, fp=0.22, fn=1.0),
    "reward_low_FN_rate": Profile(tp=1.0, fp=0.11, fn=2.0),
}


def parse_profiles(raw: object, where: str = "profiles.json") -> dict[str, Profile]:
    """Profiles from NAB's ``profiles.json`` structure (``{name: {"CostMatrix": {...}}}``)."""
    if not isinstance(raw, Mapping):
        raise InputError("expected an object of profiles", where=where)
    out: dict[str, Profile] = {}
    for name, body in raw.items():
        cm = body.get("CostMatrix") if isinstance(body, Mapping) else None
        if not isinstance(cm, Mapping):
            raise InputError("missing CostMatrix", where=f"{where}: {name}")
        try:
            out[str(name)] = Profile(float(cm["tpWeight"]), float(cm["fpWeight"]), float(cm["fnWeight"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"bad weights ({exc})", where=f"{where}: {name}.CostMatrix") from exc
    return out


def scaled_sigmoid(p: float) -> float:
    """NAB's σ(p) = 2/(1 + e^(5p)) − 1, and −1 beyond p > 3."""
    if p > 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * p)) - 1.0


def probation_rows(n: int) -> int:
    """Rows at the start of a file that are never scored."""
    return min(math.floor(0.15 * n), 750)


@dataclass(frozen=True)
class FileCase:
    """One file: its scores (one per row) and labelled windows as inclusive row ranges."""

    name: str
    scores: FloatArray
    windows: Sequence[tuple[int, int]]


@dataclass(frozen=True)
class _Prepared:
    """Row values that do not depend on the threshold."""

    fp_scores: FloatArray  # scores of scored rows outside windows
    fp_sigma: FloatArray  # their unweighted σ (−1 before the first window)
    win_runmax: list[FloatArray] = field(default_factory=list)  # running max per window
    win_tp: list[FloatArray] = field(default_factory=list)  # σ(p)/σ(−1) per window row


_MAX_TP = scaled_sigmoid(-1.0)


def _prepare(case: FileCase) -> _Prepared:
    scores = np.asarray(case.scores, dtype=np.float64)
    n = scores.shape[0]
    start = probation_rows(n)
    outside = np.ones(n, dtype=bool)
    sigma = np.full(n, -1.0)
    runmax: list[FloatArray] = []
    tpv: list[FloatArray] = []
    windows = sorted(case.windows)
    for k, (lo, hi) in enumerate(windows):
        width = hi - lo + 1
        rows = np.arange(lo, hi + 1)
        outside[lo : hi + 1] = False
        keep = rows >= start
        pos = -(hi - rows[keep] + 1) / width
        runmax.append(np.maximum.accumulate(scores[rows[keep]]) if keep.any() else np.empty(0))
        tpv.append(np.array([scaled_sigmoid(p) / _MAX_TP for p in pos.tolist()]))
        nxt = windows[k + 1][0] if k + 1 < len(windows) else n
        after = np.arange(hi + 1, nxt)
        rel = (after - hi) / max(width - 1, 1)
        sigma[hi + 1 : nxt] = [scaled_sigmoid(p) for p in rel.tolist()]
    scored = outside & (np.arange(n) >= start)
    return _Prepared(scores[scored], sigma[scored], runmax, tpv)


@dataclass(frozen=True)
class CorpusResult:
    """Normalised scores per profile at one threshold, plus per-file detail."""

    threshold: float
    scores: dict[str, float]
    per_file: dict[str, dict[str, object]]


def _window_values(prep: _Prepared, thresholds: FloatArray) -> list[FloatArray]:
    """Per window: the tp credit (σ(p)/σ(−1)) at each threshold, or NaN if missed."""
    out: list[FloatArray] = []
    for rm, tp in zip(prep.win_runmax, prep.win_tp, strict=True):
        idx = np.searchsorted(rm, thresholds, side="left")
        hit = idx < rm.shape[0]
        val = np.full(thresholds.shape[0], np.nan)
        val[hit] = tp[idx[hit]]
        out.append(val)
    return out


def _fp_sum(prep: _Prepared, thresholds: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Sum of unweighted σ over false positives, and their count, per threshold."""
    order = np.argsort(prep.fp_scores, kind="stable")
    s = prep.fp_scores[order]
    sig = prep.fp_sigma[order]
    suffix = np.concatenate([np.cumsum(sig[::-1])[::-1], [0.0]])
    idx = np.searchsorted(s, thresholds, side="left")
    return suffix[idx], (s.shape[0] - idx).astype(np.float64)


def _totals(
    preps: Sequence[_Prepared], thresholds: FloatArray, profiles: Mapping[str, Profile]
) -> tuple[dict[str, FloatArray], int]:
    """Normalised corpus score per profile at each threshold."""
    n_windows = sum(len(p.win_runmax) for p in preps)
    tp_sum = np.zeros(thresholds.shape[0])
    missed = np.zeros(thresholds.shape[0])
    fp_sig = np.zeros(thresholds.shape[0])
    for prep in preps:
        vals = _window_values(prep, thresholds)
        for v in vals:
            hit = ~np.isnan(v)
            tp_sum += np.where(hit, v, 0.0)
            missed += ~hit
        fp_sig += _fp_sum(prep, thresholds)[0]
    out: dict[str, FloatArray] = {}
    for name, pr in profiles.items():
        raw = pr.tp * tp_sum - pr.fn * missed + pr.fp * fp_sig
        null, perfect = -pr.fn * n_windows, pr.tp * n_windows
        span = perfect - null
        out[name] = 100.0 * (raw - null) / span if span > 0 else np.zeros_like(raw)
    return out, n_windows


def _per_file(
    cases: Sequence[FileCase], preps: Sequence[_Prepared], t: float, profiles: Mapping[str, Profile]
) -> dict[str, dict[str, object]]:
    th = np.array([t])
    detail: dict[str, dict[str, object]] = {}
    for case, prep in zip(cases, preps, strict=True):
        vals = _window_values(prep, th)
        credits = [float(v[0]) for v in vals]
        fp_sig, fp_n = _fp_sum(prep, th)
        raw = {
            name: sum(pr.tp * c if not math.isnan(c) else -pr.fn for c in credits) + pr.fp * float(fp_sig[0])
            for name, pr in profiles.items()
        }
        detail[case.name] = {
            "windows": len(credits),
            "detected": sum(not math.isnan(c) for c in credits),
            "false_positives": int(fp_n[0]),
            "raw": raw,
        }
    return detail


def score_corpus(
    cases: Sequence[FileCase],
    *,
    threshold: float,
    profiles: Mapping[str, Profile] = DEFAULT_PROFILES,
) -> tuple[CorpusResult, dict[str, CorpusResult]]:
    """Score at ``threshold`` and at each profile's corpus-optimal threshold.

    Returns ``(at_default, {profile: at_best})``. The sweep tries every distinct score
    (a detection is ``score >= t``) plus +inf ("never fire"); ties go to the higher one.
    """
    preps = [_prepare(c) for c in cases]
    cand = np.unique(np.concatenate([np.asarray(c.scores, dtype=np.float64) for c in cases] + [np.array([np.inf])]))
    cand = cand[~np.isnan(cand)][::-1]
    totals, _ = _totals(preps, cand, profiles)
    at_default = _totals(preps, np.array([threshold]), profiles)[0]
    default = CorpusResult(
        threshold=threshold,
        scores={k: float(v[0]) for k, v in at_default.items()},
        per_file=_per_file(cases, preps, threshold, profiles),
    )
    best: dict[str, CorpusResult] = {}
    for name, tot in totals.items():
        i = int(np.argmax(tot))
        t = float(cand[i])
        best[name] = CorpusResult(threshold=t, scores={name: float(tot[i])}, per_file={})
    return default, best
