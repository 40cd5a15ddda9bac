"""SLO burn-rate alerting (multi-window, multi-burn-rate; Google SRE workbook, ch. 5).

Each point is an error ratio for one step (or a latency, turned into bad = 1 / good = 0
by ``bad_above``). The burn rate of a window is its mean error ratio divided by the error
budget ``1 - objective``. A rule ``(long_s, short_s, burn)`` fires when both its long and
its short window burn faster than ``burn``; the score is the strongest rule's
``min(long, short) / burn``, so 1.0 is exactly "page now".
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np
import numpy.typing as npt

from novacron.detectors.base import (
    Detector,
    FloatArray,
    check_positive,
    finish_score,
    finish_scores,
    register,
    sanitize_batch,
)
from novacron.errors import InputError

__all__ = ["SRE_WORKBOOK_RULES", "SLOBurnRate"]

# (long window s, short window s, burn-rate threshold): 2% of a 30-day budget in 1 h,
# 5% in 6 h (page); 10% in 1 d, 10% in 3 d (ticket).
SRE_WORKBOOK_RULES: tuple[tuple[float, float, float], ...] = (
    (3600.0, 300.0, 14.4),
    (21600.0, 1800.0, 6.0),
    (86400.0, 7200.0, 3.0),
    (259200.0, 21600.0, 1.0),
)


@register("slo_burn")
class SLOBurnRate(Detector):
    """Multi-window, multi-burn-rate SLO alert as a score (>= 1 means a rule fires)."""

    default_threshold = 1.0

    def __init__(
        self,
        *,
        objective: float = 0.999,
        step_s: float = 60.0,
        rules: tuple[tuple[float, float, float], ...] = SRE_WORKBOOK_RULES,
        bad_above: float | None = None,
    ) -> None:
        if not 0.0 < objective < 1.0:
            raise InputError(f"must be in (0, 1), got {objective!r}", where="objective")
        check_positive("step_s", step_s)
        if not rules:
            raise InputError("at least one (long_s, short_s, burn) rule is needed", where="rules")
        for rule in rules:
            if len(rule) != 3 or min(rule) <= 0:
                raise InputError(f"each rule is (long_s, short_s, burn) > 0, got {rule!r}", where="rules")
        self.objective = objective
        self.step_s = step_s
        self.rules = tuple(tuple(float(v) for v in r) for r in rules)
        self.bad_above = bad_above
        self._prefix: deque[float] | None = None
        self._win: list[tuple[int, int, float]] = []

    def _windows(self) -> list[tuple[int, int, float]]:
        step = self.step_s
        return [(max(1, round(lg / step)), max(1, round(sh / step)), burn) for lg, sh, burn in self.rules]

    def _state(self) -> deque[float]:
        if self._prefix is None:
            longest = max(max(lg, sh) for lg, sh, _ in self._windows())
            # Prefix sums of the last ``longest`` points (plus the one before them), so any
            # window's sum is a difference of two entries.
            self._prefix = deque([0.0], maxlen=longest + 1)
            # Per rule: window lengths in points and the rate that means "burn x budget".
            budget = 1.0 - self.objective
            self._win = [(lg, sh, budget * burn) for lg, sh, burn in self._windows()]
        return self._prefix

    def _bad(self, x: float) -> float:
        if self.bad_above is not None:
            return 1.0 if x > self.bad_above else 0.0
        return min(1.0, max(0.0, x))

    def learn_one(self, x: float) -> None:
        """Append one step's error ratio (non-finite steps are skipped)."""
        if not math.isfinite(x):
            return
        prefix = self._state()
        prefix.append(prefix[-1] + self._bad(x))

    def score_one(self, x: float) -> float:
        """Strongest rule's burn ratio if ``x`` were the latest step."""
        if not math.isfinite(x):
            return 0.0
        prefix = self._state()
        total = prefix[-1] + self._bad(x)
        have = len(prefix)  # points available including x = len(prefix)
        best = 0.0
        for lg, sh, limit in self._win:
            wl = lg if lg < have else have
            ws = sh if sh < have else have
            rate = min((total - prefix[have - wl]) / wl, (total - prefix[have - ws]) / ws)
            if rate > best * limit:
                best = rate / limit
        return finish_score(best)

    def score_many(self, xs: npt.ArrayLike) -> FloatArray:
        """Vectorised score-then-learn over prefix sums."""
        vals, ok = sanitize_batch(xs)
        good = vals[ok]
        limit = self.bad_above
        bad = (good > limit).astype(np.float64) if limit is not None else np.clip(good, 0.0, 1.0)
        prefix = self._state()
        hist = np.asarray(prefix, dtype=np.float64)
        seq = np.concatenate([[hist[-1]], bad])
        allp = np.concatenate([hist[:-1], np.cumsum(seq)])
        h0 = hist.shape[0]
        ends = h0 + np.arange(good.shape[0])  # index of each point's running total
        have = ends  # points in view (history + new up to this one), capped by windows
        budget = 1.0 - self.objective
        best = np.zeros(good.shape[0])
        for lg, sh, burn in self._windows():
            rates = []
            for w in (lg, sh):
                ww = np.minimum(w, have)
                rates.append((allp[ends] - allp[ends - ww]) / ww / budget)
            best = np.maximum(best, np.minimum(rates[0], rates[1]) / burn)
        prefix.extend(allp[h0:].tolist())
        out = np.zeros(vals.shape[0])
        out[ok] = best
        return finish_scores(out)
