"""Canary promotion as a pure state machine: 1 % → 10 % → 50 % → 100 %, or back to 0 %.

At every look :func:`judge` takes the canary's state and both arms' tallies and says what
to do: hold, advance to the next split, promote, roll back or halt. The order of checks:

1. **Sample-ratio mismatch** in the current step halts the experiment (the split is broken,
   so no comparison can be trusted) and sends all traffic back to the baseline.
2. **Regression**: the always-valid mSPRT on the error ratio or on the share of slow
   requests is significant with the canary worse → roll back. Checked at every look, over
   all requests since the start, so a bad canary is caught at whatever step it is.
3. **Step done**: the canary served the requests the step needs — the fixed-horizon sample
   size for detecting the minimum effect at this step's split, with the policy's α and
   power — and neither metric regressed → advance, or promote after the last step.
   **Zero-baseline guard**: a canary with errors while the baseline has none never
   advances on "no significant difference"; it waits for evidence either way and is rolled
   back when the step runs out of its sample budget.
4. Otherwise hold. A step that exceeds ``max_samples`` without passing rolls back: an
   inconclusive canary is not promoted.

The caller applies the verdict through the executor and stores the new state.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from typing import Any

from novacron.experiments.fixed import chi_square, sample_size, welch_t_from_stats
from novacron.experiments.sequential import SequentialResult, bernoulli_variance, msprt, tau_grid
from novacron.experiments.srm import srm_check
from novacron.experiments.tally import ArmWindow

__all__ = ["CanaryPolicy", "CanaryState", "Move", "Phase", "Verdict", "judge"]


class Phase(enum.StrEnum):
    """Where a canary is."""

    RUNNING = "running"
    PROMOTED = "promoted"
    ROLLED_BACK = "rolled_back"
    HALTED = "halted"  # sample-ratio mismatch
    STOPPED = "stopped"  # a human stopped it


class Move(enum.StrEnum):
    """What the caller should do after a look."""

    HOLD = "hold"
    ADVANCE = "advance"
    PROMOTE = "promote"
    ROLLBACK = "rollback"
    HALT = "halt"


@dataclass(frozen=True, slots=True)
class CanaryPolicy:
    """How a canary is judged."""

    steps: tuple[float, ...] = (1.0, 10.0, 50.0, 100.0)
    alpha: float = 0.05
    power: float = 0.8
    mde: float = 0.1  # relative increase in error ratio worth detecting
    latency_mde: float = 0.2  # relative increase of the latency quantile worth detecting
    quantile: float = 0.95
    base_rate: float = 0.01  # the baseline error ratio expected (scales the smallest effect the tests look for)
    min_samples: int = 100  # fewest canary requests per step
    max_samples: int = 200_000  # most canary requests per step before an inconclusive rollback

    def __post_init__(self) -> None:
        if not self.steps or any(not 0 < s <= 100 for s in self.steps) or list(self.steps) != sorted(self.steps):
            raise ValueError("steps must be increasing percentages in (0, 100]")
        if self.steps[-1] != 100 or len(self.steps) < 2:
            raise ValueError("the last of at least two steps must be 100 (promotion)")
        if not (0 < self.alpha < 1 and 0 < self.power < 1):
            raise ValueError("alpha and power must lie in (0, 1)")
        if self.mde <= 0 or self.latency_mde <= 0 or not 0 < self.base_rate < 1:
            raise ValueError("mde, latency_mde and base_rate must be positive (base_rate below 1)")
        if not 0 < self.min_samples <= self.max_samples:
            raise ValueError("min_samples must be positive and at most max_samples")

    def error_taus(self) -> tuple[float, ...]:
        """Mixing scales for the error ratio: from the smallest effect worth detecting upwards.

        Fixed before any data is seen (a scale tuned on the data would void the guarantee).
        """
        return tau_grid(self.mde * self.base_rate)

    def slow_taus(self) -> tuple[float, ...]:
        """Mixing scales for the share of requests over the baseline's quantile.

        A quantile that grows by ``latency_mde`` roughly doubles the tail beyond it for
        ordinary latency spreads, so the smallest scale is the tail's own size times the
        relative shift (at least a tenth of the tail).
        """
        tail = 1.0 - self.quantile
        return tau_grid(tail * max(0.1, self.latency_mde))


@dataclass(frozen=True, slots=True)
class CanaryState:
    """What must survive a restart: the step and where it began."""

    phase: Phase = Phase.RUNNING
    step: int = 0
    step_base: tuple[int, int] = (0, 0)  # (baseline, canary) requests when this step began
    reason: str = ""
    looks: int = 0

    def split(self, policy: CanaryPolicy) -> float:
        """The canary's share of traffic now, in percent."""
        if self.phase is Phase.PROMOTED:
            return 100.0
        if self.phase is not Phase.RUNNING:
            return 0.0
        return policy.steps[self.step]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "phase": self.phase.value,
            "step": self.step,
            "step_base": list(self.step_base),
            "reason": self.reason,
            "looks": self.looks,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CanaryState:
        """Back from :meth:`to_json`."""
        base = data.get("step_base", [0, 0])
        return cls(
            Phase(data["phase"]),
            int(data["step"]),
            (int(base[0]), int(base[1])),
            str(data.get("reason", "")),
            int(data.get("looks", 0)),
        )


@dataclass(frozen=True, slots=True)
class Verdict:
    """The result of one look."""

    move: Move
    state: CanaryState
    split: float  # the canary's share after the move, percent
    reason: str
    tests: dict[str, SequentialResult] = field(default_factory=dict)
    required: int = 0  # canary requests this step needs

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "move": self.move.value,
            "state": self.state.to_json(),
            "split": self.split,
            "reason": self.reason,
            "tests": {k: v.to_json() for k, v in self.tests.items()},
            "required": self.required,
        }


def tests(policy: CanaryPolicy, baseline: ArmWindow, canary: ArmWindow) -> dict[str, SequentialResult]:
    """The always-valid tests of the canary against the baseline: error ratio and slow share."""
    out = {
        "error_ratio": msprt(
            baseline.error_ratio,
            float(bernoulli_variance(baseline.errors, baseline.requests)),
            baseline.requests,
            canary.error_ratio,
            float(bernoulli_variance(canary.errors, canary.requests)),
            canary.requests,
            taus=policy.error_taus(),
            alpha=policy.alpha,
        )
    }
    if baseline.timed and canary.timed:
        pa, pb = baseline.slow / baseline.timed, canary.slow / canary.timed
        out["slow_share"] = msprt(
            pa,
            float(bernoulli_variance(baseline.slow, baseline.timed)),
            baseline.timed,
            pb,
            float(bernoulli_variance(canary.slow, canary.timed)),
            canary.timed,
            taus=policy.slow_taus(),
            alpha=policy.alpha,
        )
    return out


def fixed_horizon_report(baseline: ArmWindow, canary: ArmWindow) -> dict[str, dict[str, Any]]:
    """Fixed-horizon tests for the report (never for decisions): chi-square on errors, Welch t on latency."""
    la, lb = baseline.latency, canary.latency
    return {
        "error_ratio": chi_square(baseline.errors, baseline.requests, canary.errors, canary.requests).to_json(),
        "latency": welch_t_from_stats(la.mean, la.variance, la.n, lb.mean, lb.variance, lb.n).to_json(),
    }


def required_samples(policy: CanaryPolicy, baseline: ArmWindow, split: float) -> int:
    """Canary requests the step at ``split`` % needs to see the minimum error-ratio effect."""
    p = max(baseline.error_ratio, policy.base_rate)
    delta = policy.mde * p
    q = min(p + delta, 1.0)
    ratio = (100.0 - split) / split if split < 100 else 1.0
    n = sample_size(p * (1 - p), q * (1 - q), delta, alpha=policy.alpha, power=policy.power, ratio=ratio)
    return max(policy.min_samples, min(policy.max_samples, n))


def judge(
    policy: CanaryPolicy, state: CanaryState, baseline: ArmWindow, canary: ArmWindow, *, share: float | None = None
) -> Verdict:
    """One look: what to do now (see the module's docstring for the order of checks).

    ``share`` is the canary's share of traffic the load balancer really applies (percent;
    integer weights round the step's split), which the sample-ratio check expects.
    """
    if state.phase is not Phase.RUNNING:
        return Verdict(Move.HOLD, state, state.split(policy), state.reason or state.phase.value)
    state = replace(state, looks=state.looks + 1)
    split = policy.steps[state.step]
    expected = split if share is None else share
    in_step = (baseline.requests - state.step_base[0], canary.requests - state.step_base[1])
    srm = srm_check(in_step, (100.0 - expected, expected))
    if srm.mismatch:
        why = f"sample-ratio mismatch at {split:g} %: {in_step[1]} of {sum(in_step)} requests (p={srm.p_value:.2g})"
        return _end(Move.HALT, Phase.HALTED, state, why)
    results = tests(policy, baseline, canary)
    for name, r in results.items():
        if r.significant and r.diff > 0:
            why = f"{name} regressed by {r.diff:+.4f} (always-valid p={r.p_value:.2g})"
            return _end(Move.ROLLBACK, Phase.ROLLED_BACK, state, why, results)
    need = required_samples(policy, baseline, split)
    if in_step[1] < need:
        return Verdict(Move.HOLD, state, split, f"{in_step[1]} of {need} canary requests at {split:g} %", results, need)
    if baseline.errors == 0 and canary.errors > 0:
        if in_step[1] >= policy.max_samples:
            why = f"the canary had {canary.errors} error(s) where the baseline had none"
            return _end(Move.ROLLBACK, Phase.ROLLED_BACK, state, why, results)
        why = "zero-baseline guard: the canary has errors, the baseline none; waiting for evidence"
        return Verdict(Move.HOLD, state, split, why, results, need)
    nxt = state.step + 1
    if policy.steps[nxt] >= 100:
        done = replace(state, phase=Phase.PROMOTED, step=nxt, reason=f"passed {len(policy.steps) - 1} step(s)")
        return Verdict(Move.PROMOTE, done, 100.0, done.reason, results, need)
    moved = replace(state, step=nxt, step_base=(baseline.requests, canary.requests))
    return Verdict(
        Move.ADVANCE, moved, policy.steps[nxt], f"step {split:g} % passed with {in_step[1]} requests", results, need
    )


def _end(
    move: Move, phase: Phase, state: CanaryState, why: str, results: dict[str, SequentialResult] | None = None
) -> Verdict:
    return Verdict(move, replace(state, phase=phase, reason=why), 0.0, why, results or {})
