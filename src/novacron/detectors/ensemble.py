"""A calibrated ensemble: several detectors, each turned into a tail probability, combined.

Each member's raw score goes through its own :class:`Likelihood`; the smallest tail
probability is corrected for having looked ``k`` times (Bonferroni: ``min(1, k·p_min)``),
so the output stays a conservative tail probability, reported on the same [0, 1] log scale
as :class:`Likelihood`. After an alarm (score ≥ ``alarm``) the output is held at 0 for
``refractory`` steps: one incident should raise one alarm, not a burst of them. Only a
clearly worse event (at least ``escalate`` above the last alarm's score, i.e. that many
tenths of the ``decades`` scale) breaks through the hold and restarts it.

With ``rank_history > 0`` the members' combined probability is paired with a second
opinion that needs no model: the conformal rank of the value itself among the last
``rank_history`` values (:class:`~novacron.detectors.rank.ValueRank`). The two are
combined as a geometric mean, ``sqrt(p_members · p_rank)``: an alarm needs a value that
both surprises the models and is rare in magnitude, or one that is extreme on either
count. Chosen by leave-one-category-out cross-validation on NAB (docs/detectors.md), where
it removed most false alarms on metrics with recurring spikes.

With ``kernel="auto"`` (the default) and numba installed (the ``fast`` extra), an
ensemble of robust z-score, Holt-Winters and CUSUM members runs as compiled kernels over
numpy state (:mod:`novacron.detectors._fused`) with the same arithmetic;
``kernel="python"`` keeps the object path. A long compiled batch runs its parts on two
threads (``batch_threads``: 0 = ``$NOVACRON_BATCH_THREADS`` or, unset, two when the
machine has more than one CPU; 1 = one thread), with the same scores.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from novacron.detectors import _fused_batch
from novacron.detectors._fused import Fused, supported
from novacron.detectors.base import (
    Detector,
    FloatArray,
    check_positive,
    finish_scores,
    register,
    sanitize_batch,
)
from novacron.detectors.changepoint import CUSUM
from novacron.detectors.likelihood import Likelihood, p_to_score
from novacron.detectors.rank import ValueRank
from novacron.detectors.robust import RobustZScore
from novacron.detectors.smoothing import HoltWinters
from novacron.errors import InputError

__all__ = ["Ensemble", "default_members"]

_KERNELS = ("auto", "python")


def default_members() -> tuple[Detector, ...]:
    """The general-purpose trio: spikes (robust z), seasonal residual, sustained shifts."""
    return (RobustZScore(), HoltWinters(), CUSUM())


@register("ensemble")
class Ensemble(Detector):
    """Bonferroni-combined anomaly likelihoods of its members, in [0, 1]."""

    default_threshold = 0.5
    unit_interval = True

    def __init__(
        self,
        *,
        members: Sequence[Detector] | None = None,
        history: int = 2000,
        short: int = 10,
        min_history: int = 100,
        min_std: float = 0.05,
        decades: float = 10.0,
        familiar_count: int = 3,
        familiar_cap: float = 1e-3,
        alarm: float = 0.5,
        refractory: int = 0,
        escalate: float = 0.3,
        rank_history: int = 0,
        kernel: str = "auto",
        batch_threads: int = 0,
    ) -> None:
        if members is not None and not all(isinstance(m, Detector) for m in members):
            raise InputError("members must be detectors", where="members")
        if members is not None and len(members) == 0:
            raise InputError("at least one member is needed", where="members")
        check_positive("decades", decades)
        if refractory < 0:
            raise InputError(f"must be >= 0, got {refractory!r}", where="refractory")
        if rank_history < 0:
            raise InputError(f"must be >= 0 (0 = off), got {rank_history!r}", where="rank_history")
        if kernel not in _KERNELS:
            raise InputError(f"must be one of {_KERNELS}, got {kernel!r}", where="kernel")
        if batch_threads < 0:
            raise InputError(f"must be >= 0 (0 = automatic), got {batch_threads!r}", where="batch_threads")
        self.members = tuple(members) if members is not None else None
        self.history = history
        self.short = short
        self.min_history = min_history
        self.min_std = min_std
        self.decades = decades
        self.familiar_count = familiar_count
        self.familiar_cap = familiar_cap
        self.alarm = alarm
        self.refractory = int(refractory)
        self.escalate = escalate
        self.rank_history = int(rank_history)
        self.kernel = kernel
        self.batch_threads = int(batch_threads)
        self.default_threshold = alarm
        self._calibrated: list[Likelihood] | None = None
        self._rank: ValueRank | None = None
        self._quiet = 0
        self._level = 0.0
        self._cache: tuple[float, float] | None = None
        self._fused: Fused | None = None
        self._fused_checked = False

    @property
    def compiled(self) -> bool:
        """Whether this ensemble runs on the compiled kernels (``fast`` extra, supported members)."""
        return self._compiled() is not None

    def _compiled(self) -> Fused | None:
        """The compiled state, when the kernel and the members allow it (decided once)."""
        if not self._fused_checked:
            self._fused_checked = True
            members = self.members if self.members is not None else default_members()
            if self.kernel == "auto" and supported(members):
                calib = {
                    "history": self.history,
                    "short": self.short,
                    "min_history": self.min_history,
                    "min_std": self.min_std,
                    "decades": self.decades,
                    "familiar_count": self.familiar_count,
                    "familiar_cap": self.familiar_cap,
                    "alarm": self.alarm,
                    "refractory": self.refractory,
                    "escalate": self.escalate,
                }
                self._fused = Fused(members, calib, self.rank_history)
        return self._fused

    def _state(self) -> list[Likelihood]:
        if self._calibrated is None:
            members = self.members if self.members is not None else default_members()
            self._calibrated = [
                Likelihood(
                    detector=m,
                    history=self.history,
                    short=self.short,
                    min_history=self.min_history,
                    min_std=self.min_std,
                    decades=self.decades,
                    familiar_count=self.familiar_count,
                    familiar_cap=self.familiar_cap,
                )
                for m in members
            ]
            if self.rank_history:
                self._rank = ValueRank(history=self.rank_history, min_history=self.min_history)
        return self._calibrated

    def _combined(self, x: float) -> float:
        if self._cache is not None and self._cache[0] == x:
            return self._cache[1]
        cals = self._state()
        p = min(1.0, len(cals) * min(c.p_one(x) for c in cals))
        if self._rank is not None:
            p = math.sqrt(p * self._rank.p_one(x))
        s = p_to_score(p, self.decades)
        self._cache = (x, s)
        return s

    def score_one(self, x: float) -> float:
        """Combined likelihood score of ``x`` (0 while an earlier alarm is cooling down)."""
        fused = self._compiled()
        if fused is not None:
            return fused.score(x)
        if not math.isfinite(x):
            return 0.0
        s = self._combined(x)
        return s if self._quiet == 0 or self._breaks_through(s) else 0.0

    def _breaks_through(self, s: float) -> bool:
        return s >= self.alarm and s >= self._level + self.escalate

    def learn_one(self, x: float) -> None:
        """Let every member learn ``x`` and advance the refractory timer."""
        if not math.isfinite(x):
            return
        fused = self._compiled()
        if fused is not None:
            fused.learn(x)
            return
        s = self._combined(x)
        if (self._quiet == 0 and s >= self.alarm) or (self._quiet > 0 and self._breaks_through(s)):
            self._quiet, self._level = self.refractory, s
        elif self._quiet > 0:
            self._quiet -= 1
        self._cache = None
        for c in self._state():
            c.learn_one(x)
        if self._rank is not None:
            self._rank.learn_one(x)

    def score_many(self, xs: npt.ArrayLike) -> FloatArray:
        """Vectorised members; the refractory pass only visits candidate alarms."""
        vals, ok = sanitize_batch(xs)
        every = bool(ok.all())
        good = vals if every else vals[ok]
        fused = self._compiled()
        if fused is not None:
            scores = _fused_batch.score_many(fused, good, _fused_batch.batch_threads(self.batch_threads))
            if every:  # the usual batch: no copy into a masked array
                return finish_scores(scores)
            out = np.zeros(vals.shape[0])
            out[ok] = scores
            return finish_scores(out)
        self._cache = None
        cals = self._state()
        if good.shape[0] == 0:
            return np.zeros(vals.shape[0])
        p_min = np.min(np.vstack([c.p_many(good) for c in cals]), axis=0)
        p = np.minimum(1.0, len(cals) * p_min)
        if self._rank is not None:
            p = np.sqrt(p * self._rank.p_many(good))
        s = np.clip(-np.log10(np.maximum(p, 1e-300)) / self.decades, 0.0, 1.0)
        s = self._apply_refractory(s)
        out = np.zeros(vals.shape[0])
        out[ok] = s
        return finish_scores(out)

    def _apply_refractory(self, s: FloatArray) -> FloatArray:
        """Batch twin of the hold in ``learn_one``; visits only scores at or above ``alarm``."""
        m = s.shape[0]
        quiet = np.zeros(m, dtype=bool)
        quiet[: self._quiet] = True
        until = self._quiet - 1  # last held index
        level = self._level
        for j in np.flatnonzero(s >= self.alarm).tolist():
            if j <= until and s[j] < level + self.escalate:
                continue
            quiet[j + 1 : j + 1 + self.refractory] = True
            quiet[j] = False  # an alarm that breaks through is shown
            until, level = j + self.refractory, float(s[j])
        self._quiet = max(0, until - m + 1)
        self._level = level
        return np.where(quiet, 0.0, s)
