"""Sample-ratio mismatch: traffic that does not split as configured means a broken experiment.

A chi-square goodness-of-fit test of the arms' counts against the configured shares.
The threshold is strict (p < 0.001, the industry's usual) because the check runs at every
look: a true mismatch grows with traffic and crosses it soon anyway, a false alarm halts
a healthy experiment.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from scipy import stats

__all__ = ["SrmResult", "srm_check"]

SRM_ALPHA = 0.001


@dataclass(frozen=True, slots=True)
class SrmResult:
    """The check's verdict."""

    mismatch: bool
    p_value: float
    observed: tuple[int, ...]
    expected_share: tuple[float, ...]


def srm_check(
    counts: Sequence[int], shares: Sequence[float], *, alpha: float = SRM_ALPHA, min_total: int = 100
) -> SrmResult:
    """Whether ``counts`` are implausible under the ``shares`` (which need not sum to 1).

    Arms with a zero share must see no traffic at all; below ``min_total`` observations
    there is no verdict.
    """
    if len(counts) != len(shares) or not counts:
        raise ValueError("counts and shares must have the same, non-zero length")
    if any(s < 0 for s in shares) or sum(shares) <= 0:
        raise ValueError("shares must be non-negative with a positive sum")
    total = sum(counts)
    norm = tuple(s / sum(shares) for s in shares)
    if any(c > 0 and s == 0 for c, s in zip(counts, norm, strict=True)):
        return SrmResult(True, 0.0, tuple(counts), norm)
    if total < min_total:
        return SrmResult(False, 1.0, tuple(counts), norm)
    live = [(c, s) for c, s in zip(counts, norm, strict=True) if s > 0]
    if len(live) < 2:
        return SrmResult(False, 1.0, tuple(counts), norm)
    _, p = stats.chisquare([c for c, _ in live], [s * total for _, s in live])
    return SrmResult(bool(p < alpha), float(p), tuple(counts), norm)
