"""Is the learned policy estimated to do better than the ladder? Judged on logged decisions.

Both policies are scored with the doubly robust estimator on the same logged decisions
(whatever policy made them), with the learned policy's own value estimates as the reward
model: what it learned on the twin fills in where the log has no outcome, and the real
outcomes correct it where it has. The learned policy is used only when its estimated mean
reward per decision beats the ladder's by more than ``z`` standard errors of the paired
difference. Below ``min_decisions`` nothing is judged: the promoted policy stays.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from novacron.errors import InputError
from novacron.learning.ope import Probabilities, Record, doubly_robust_terms
from novacron.learning.policies import RemediationPolicy

__all__ = ["ValueVerdict", "compare_to_ladder"]


@dataclass(frozen=True, slots=True)
class ValueVerdict:
    """Which policy to act with, and the estimates behind it."""

    use_learned: bool
    judged: bool  # False: too few decisions to judge
    n: int
    learned: float = 0.0  # estimated mean reward per decision (when judged)
    ladder: float = 0.0
    stderr: float = 0.0  # of the paired difference

    @property
    def reason(self) -> str:
        """One line for the log, the audit trail and ``novacron status``."""
        if not self.judged:
            return f"{self.n} settled decisions logged, too few to judge the learned policy against the ladder"
        verdict = "better than the ladder" if self.use_learned else "not better than the ladder"
        return (
            f"learned policy {verdict}: doubly robust reward per decision {self.learned:.2f} against "
            f"the ladder's {self.ladder:.2f} (difference s.e. {self.stderr:.2f}, {self.n} decisions)"
        )

    def to_dict(self) -> dict[str, object]:
        """JSON-ready (status, API)."""
        return {
            "use_learned": self.use_learned,
            "judged": self.judged,
            "decisions": self.n,
            "learned": self.learned if self.judged else None,
            "ladder": self.ladder if self.judged else None,
            "stderr": self.stderr if self.judged else None,
            "reason": self.reason,
        }


def compare_to_ladder(
    records: Sequence[Record],
    learned: RemediationPolicy,
    ladder: RemediationPolicy,
    *,
    min_decisions: int = 50,
    z: float = 1.64,
) -> ValueVerdict:
    """Judge ``learned`` (greedy) against ``ladder`` on ``records``."""
    if min_decisions < 2 or z < 0:
        raise InputError("min_decisions must be >= 2 and z >= 0", where="value_check")
    if len(records) < min_decisions:
        return ValueVerdict(use_learned=True, judged=False, n=len(records))

    def greedy(policy: RemediationPolicy) -> Probabilities:
        return lambda ctx, allowed: policy.probabilities(ctx, allowed, explore=False)

    mine = doubly_robust_terms(records, greedy(learned), learned.value)
    theirs = doubly_robust_terms(records, greedy(ladder), learned.value)
    diffs = [a - b for a, b in zip(mine, theirs, strict=True)]
    stderr = statistics.stdev(diffs) / math.sqrt(len(diffs))
    better = statistics.fmean(diffs) - z * stderr > 0
    return ValueVerdict(
        use_learned=better,
        judged=True,
        n=len(records),
        learned=round(statistics.fmean(mine), 3),
        ladder=round(statistics.fmean(theirs), 3),
        stderr=round(stderr, 3),
    )
