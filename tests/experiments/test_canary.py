"""The canary state machine on simulated traffic: rollback, promotion, guards and restarts."""

from __future__ import annotations

import numpy as np
import pytest

from novacron.experiments import ArmWindow, CanaryPolicy, CanaryState, Move, Phase, Tally, judge
from novacron.experiments.canary import required_samples

POLICY = CanaryPolicy(steps=(10.0, 50.0, 100.0), mde=1.0, base_rate=0.05, min_samples=200, max_samples=5000)


def _run(
    err_a: float, err_b: float, slow_b: float = 1.0, *, seed: int = 0, looks: int = 400
) -> list[tuple[Move, float]]:
    """Drive a canary look by look with routed traffic; return the moves that changed something."""
    rng = np.random.default_rng(seed)
    tally = Tally(["a", "b"], "a", warmup=100)
    state = CanaryState()
    moves: list[tuple[Move, float]] = []
    for _ in range(looks):
        split = state.split(POLICY)
        for _ in range(100):
            arm = "b" if rng.random() * 100 < split else "a"
            err, scale = (err_b, slow_b) if arm == "b" else (err_a, 1.0)
            tally.add(arm, error=bool(rng.random() < err), latency_s=float(rng.lognormal(np.log(0.02 * scale), 0.3)))
        verdict = judge(POLICY, state, tally.arms["a"], tally.arms["b"])
        state = verdict.state
        if verdict.move is not Move.HOLD:
            moves.append((verdict.move, verdict.split))
        if state.phase is not Phase.RUNNING:
            break
    return moves


def test_a_canary_with_five_percent_errors_is_rolled_back() -> None:
    moves = _run(0.0, 0.05)
    assert moves[-1] == (Move.ROLLBACK, 0.0)


def test_a_faster_canary_without_errors_is_promoted_step_by_step() -> None:
    moves = _run(0.01, 0.01, slow_b=0.8)
    assert moves == [(Move.ADVANCE, 50.0), (Move.PROMOTE, 100.0)]


def test_a_slower_canary_is_rolled_back_on_latency() -> None:
    moves = _run(0.0, 0.0, slow_b=1.3)
    assert moves[-1][0] is Move.ROLLBACK


def test_zero_baseline_guard_never_passes_a_canary_with_errors() -> None:
    base = ArmWindow(requests=2700, errors=0)
    canary = ArmWindow(requests=300, errors=1)
    verdict = judge(POLICY, CanaryState(), base, canary)
    assert verdict.move is Move.HOLD
    assert "zero-baseline" in verdict.reason
    spent = judge(POLICY, CanaryState(), ArmWindow(requests=45000), ArmWindow(requests=5000, errors=1))
    assert spent.move is Move.ROLLBACK
    assert "baseline had none" in spent.reason


def test_sample_ratio_mismatch_halts_the_experiment() -> None:
    verdict = judge(POLICY, CanaryState(), ArmWindow(requests=500), ArmWindow(requests=500))
    assert verdict.move is Move.HALT
    assert verdict.state.phase is Phase.HALTED
    assert verdict.split == 0.0
    assert "sample-ratio" in verdict.reason


def test_a_finished_canary_only_holds_and_state_survives_json() -> None:
    state = CanaryState(Phase.PROMOTED, 2, (10, 20), "done", 7)
    assert CanaryState.from_json(state.to_json()) == state
    assert judge(POLICY, state, ArmWindow(), ArmWindow()).move is Move.HOLD
    assert state.split(POLICY) == 100.0


def test_step_length_comes_from_the_sample_size_not_a_fixed_time() -> None:
    base = ArmWindow(requests=10000, errors=500)
    small, half = required_samples(POLICY, base, 10.0), required_samples(POLICY, base, 50.0)
    assert POLICY.min_samples <= small < half  # a small canary beside a big baseline needs fewer of its own


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"steps": (10.0, 5.0, 100.0)}, "increasing"),
        ({"steps": (10.0, 50.0)}, "last"),
        ({"alpha": 1.5}, "alpha"),
        ({"mde": 0.0}, "mde"),
        ({"min_samples": 10, "max_samples": 5}, "min_samples"),
    ],
)
def test_policy_rejects_bad_settings(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        CanaryPolicy(**kwargs)  # type: ignore[arg-type]
